-- -----------------------------------------------------------------------------
-- Keys (rate limits, breakers, pauses) and groups, in one queue's slot (see
-- limits.py). A key's claim state lives in each queue that has its jobs
-- ({p:q}:key:<key>), so the fetch script decides alone. A job its key or its
-- group holds back is parked: moved off the ready index to {p:q}:parked:<hold>
-- (same score), where <hold> is 'k:<key>' or 'g:<group>', and {p:q}:held
-- scores the hold with when to look at it again. So held jobs never stand
-- between a fetch and the claimable jobs behind them.
local HELD, KEY_NAMES
on_base(function() HELD, KEY_NAMES = B .. ':held', B .. ':keys' end)
local GROUP_RECHECK = 5 -- seconds: how soon to look again at a full group no settle reported free
local PRIORITY_UNIT = 1099511627776 -- 2^40: a ready score is priority * 2^40 + seq

local function key_state(name) return B .. ':key:' .. name end
local function parked(hold) return B .. ':parked:' .. hold end
local function group_running(group) return B .. ':grun:' .. group end

-- Token buckets, loaded once per call, refilled to `now`, saved if changed.
-- The arithmetic is sqlite/claim.py's Bucket, operation for operation, so
-- both backends agree to the last bit. A key seen for the first time starts full.
local buckets
on_call(function() buckets = {} end)
local function bucket(name, cap, per, now)
    local b = buckets[name]
    if not b then
        local r = redis.call('HMGET', key_state(name), 'cap', 'per', 'tokens', 'at', 'until', 'paused',
            'breaker', 'probe')
        b = {
            cap = tonumber(r[1]), per = tonumber(r[2]), tokens = tonumber(r[3]) or 0, at = tonumber(r[4]),
            untl = tonumber(r[5]) or 0, paused = r[6] == '1', breaker = r[7] or 'closed', probe = r[8],
            dirty = r[4] == false,
        }
        buckets[name] = b
    end
    if cap and (b.cap ~= cap or b.per ~= per) then
        if not b.at then b.tokens = cap end
        b.cap, b.per, b.dirty = cap, per, true
    end
    if b.cap and b.at then
        b.tokens = math.min(b.cap, b.tokens + math.max(0, now - b.at) * (b.cap / b.per))
    end
    b.at = now
    return b
end

local function save_buckets()
    for name, b in pairs(buckets) do
        if b.dirty then
            local key = key_state(name)
            redis.call('HSET', key, 'tokens', b.tokens, 'at', b.at, 'until', b.untl, 'breaker', b.breaker)
            if b.cap then redis.call('HSET', key, 'cap', b.cap, 'per', b.per) end
            if b.probe then redis.call('HSET', key, 'probe', b.probe) else redis.call('HDEL', key, 'probe') end
            redis.call('SADD', KEY_NAMES, name)
        end
    end
    buckets = {}
end

-- The lease of the key's probe job while it runs; a probe that stopped running
-- without a settle (its worker died, it was removed) frees the slot here.
local function probe_lease(b, now)
    if b.breaker ~= 'half_open' or not b.probe then return nil end
    local j = redis.call('HMGET', job_key(b.probe), 'state', 'lease_until')
    if j[1] == 'running' then return tonumber(j[2]) or now + GROUP_RECHECK end
    b.probe, b.dirty = false, true
    return nil
end

-- When the key's jobs may run again ('+inf' while paused), or nil: now.
local function key_wait(b, now)
    if b.paused then return '+inf' end
    if b.untl > now then return b.untl end
    return probe_lease(b, now)
end

-- Let job `id` start under key `b`: nil, with a token taken (and the job made
-- the probe of a breaker past its cool-down), or when to look again.
local function key_take(b, now, id)
    local wait = key_wait(b, now)
    if wait then return wait end
    if b.cap then
        if b.tokens < 1 then
            b.untl = now + (1 - b.tokens) * b.per / b.cap
            b.dirty = true
            return b.untl
        end
        b.tokens = b.tokens - 1
    end
    if b.breaker ~= 'closed' then b.breaker, b.probe = 'half_open', id end
    b.dirty = true
    return nil
end

-- Running jobs of a group in this queue. Members that no longer run (ended by
-- any path: settle, recover, a parent failed for its child) are dropped when
-- the group looks full, so the count never leaks.
local running_in
on_call(function() running_in = {} end)
local function group_count(group, limit)
    local n = running_in[group]
    if n then return n end
    local members = group_running(group)
    n = redis.call('SCARD', members)
    if n >= limit then
        for _, id in ipairs(redis.call('SMEMBERS', members)) do
            if redis.call('HGET', job_key(id), 'state') ~= 'running' then
                redis.call('SREM', members, id)
                n = n - 1
            end
        end
    end
    running_in[group] = n
    return n
end

local function park(hold, id, score, wake_at)
    redis.call('ZADD', parked(hold), score, id)
    redis.call('ZADD', HELD, wake_at, hold)
end

-- Move parked jobs whose hold may have lifted back to the ready index, at most
-- `budget` per hold: as many as the key has tokens (one probe for a breaker
-- past its cool-down), or the group has room. The fetch that follows takes
-- them or parks them again; a hold with jobs left is looked at again when due.
local function release(now, budget)
    for _, hold in ipairs(redis.call('ZRANGEBYSCORE', HELD, '-inf', now, 'LIMIT', 0, 100)) do
        local name, n, later = string.sub(hold, 3), budget, nil
        if string.sub(hold, 1, 1) == 'k' then
            local b = bucket(name, nil, nil, now)
            later = key_wait(b, now)
            if later then
                n = 0
            elseif b.breaker ~= 'closed' then
                n = 1
            elseif b.cap then
                n = math.min(budget, math.floor(b.tokens))
                if n < 1 then later = now + (1 - b.tokens) * b.per / b.cap end
            end
        else
            local head = redis.call('ZRANGE', parked(hold), 0, 0)[1]
            local limit = head and tonumber(redis.call('HGET', job_key(head), 'group_limit'))
            if limit then
                n = math.min(budget, limit - group_count(name, limit))
                if n < 1 then later = now + GROUP_RECHECK end
            end
        end
        while n > 0 do -- entries of jobs no longer pending (cancelled, removed) do not count
            local moved = redis.call('ZPOPMIN', parked(hold), n)
            if #moved == 0 then break end
            for i = 1, #moved, 2 do
                if redis.call('HGET', job_key(moved[i]), 'state') == 'pending' then
                    redis.call('ZADD', READY, moved[i + 1], moved[i])
                    n = n - 1
                end
            end
        end
        if redis.call('EXISTS', parked(hold)) == 0 then
            redis.call('ZREM', HELD, hold)
        else
            redis.call('ZADD', HELD, later or now, hold)
        end
    end
end

-- Job `id` (of key `name` and `group`, each false if none) stopped running
-- through settle: its group has room again; its key's breaker closes on a
-- success (`ok` records the breaker version it closed at, for the global
-- record) and any end frees the probe slot. Returns true when parked jobs may
-- now run (the caller wakes the queue's workers).
local function key_settled(id, name, group, success)
    local due = false
    if group and redis.call('SREM', group_running(group), id) == 1 then
        due = redis.call('ZADD', HELD, 'XX', 'CH', 0, 'g:' .. group) == 1
    end
    if name then
        local key = key_state(name)
        local s = redis.call('HMGET', key, 'breaker', 'probe', 'failures', 'bv')
        local changed = s[2] == id
        if success and ((s[1] and s[1] ~= 'closed') or (tonumber(s[3]) or 0) > 0) then
            redis.call('HSET', key, 'breaker', 'closed', 'failures', 0, 'ok', s[4] or 0)
            changed = true
        end
        if changed then
            redis.call('HDEL', key, 'probe')
            due = redis.call('ZADD', HELD, 'XX', 'CH', 0, 'k:' .. name) == 1 or due
        end
    end
    return due
end
