-- -----------------------------------------------------------------------------
-- Dedup modes beyond 'live' (see sqlite/dedup.py), for enqueue.lua. `job` is
-- what enqueue.lua read of a record with a dedup key: {id, state, run_at, mode
-- ('throttle', 'debounce' or '' for live), until_ (for throttle, until when its
-- key stays taken), first, last (where its field/value list lies in ARGV)}.
local THROTTLE -- dedup key -> 'id|until': who took the key, finished or not
on_base(function() THROTTLE = B .. ':throttle' end)

-- A value of a job record's field/value list.
local function record_field(job, name)
    for i = job.first, job.last, 2 do
        if ARGV[i] == name then return ARGV[i + 1] end
    end
end

-- The job that took `dedup_key` with throttle less than its TTL ago (other than
-- `job` itself, for a replayed call), or false. An expired entry is dropped.
local function throttled(job, dedup_key)
    if job.mode ~= 'throttle' then return false end
    local entry = redis.call('HGET', THROTTLE, dedup_key)
    if not entry then return false end
    local sep = string.find(entry, '|', 1, true)
    local holder, expires = string.sub(entry, 1, sep - 1), string.sub(entry, sep + 1)
    if tonumber(expires) > tonumber(record_field(job, 'created_at')) then
        return holder ~= job.id and holder
    end
    redis.call('HDEL', THROTTLE, dedup_key)
    return false
end

local function take_throttle(job, dedup_key)
    if job.mode == 'throttle' and job.until_ ~= '' then
        redis.call('HSET', THROTTLE, dedup_key, job.id .. '|' .. job.until_)
    end
end

-- A debounced job met the waiting job `holder` with its key: the holder takes
-- the new payload, run_at and state; it is (re)indexed through the `ready` and
-- `scheduled` lists the enqueue script adds at its end. A running job is left alone.
local function debounce(job, holder, ready, scheduled)
    if job.mode ~= 'debounce' then return end
    local key = job_key(holder)
    local h = redis.call('HMGET', key, 'state', 'attempts', 'tenant', 'priority', 'seq')
    if h[1] ~= 'pending' and h[1] ~= 'scheduled' then return end
    local state, run_at = job.state, job.run_at
    redis.call('HSET', key, 'payload', record_field(job, 'payload'), 'run_at', run_at, 'state', state)
    if state == h[1] and state == 'pending' then return end
    redis.call('ZREM', INDEX[h[1]], holder)
    count(h[1], h[2], h[3], -1)
    count(state, h[2], h[3], 1)
    if state == 'pending' then
        ready[#ready + 1] = ready_score(h[4], h[5])
        ready[#ready + 1] = holder
    else
        scheduled[#scheduled + 1] = run_at
        scheduled[#scheduled + 1] = holder
    end
end
