-- Store new jobs of one queue, honouring dedup keys, then count new children of
-- parents in this queue (see `adopt` in common.lua).
-- ARGV[1] wake channel, ARGV[2] queue name, ARGV[3] '' or a JSON list of adoption
-- groups for `adopt`, ARGV[4] the number of jobs, then each job's record as
-- records.py's new_job_record writes it: id, state, priority, run_at, dedup_key
-- or '', tenant or '', '1' for a child else '', dedup mode ('' for live), until
-- or '', n, then n items, the hash as stored as a flat field/value list (every
-- value a string; absent fields are None).
-- Returns {collisions, adopted, posted}: collisions is a flat array of (position
-- in the list, id of the live job holding its dedup key, or of the job that took
-- it with throttle within its TTL; see dedup.lua) for the jobs that were
-- not stored (every other job was, or, for a replayed call, already had been);
-- adopted is what `adopt` returned ({} without ARGV[3]); posted the outbox
-- entries written (a child cancelled before it was stored is stored cancelled).
-- A stored job's event, from the record in hand rather than a read of the new hash: the
-- flat list (ARGV[first..]) starts with fixed fields (records.py), type 2nd and
-- created_at 9th; a new job has no progress yet.
local function added(id, state, tenant, first)
    append_event(id, 'added', ARGV[first + 3], tenant, state, nil, nil, ARGV[first + 17])
end

local count_jobs = tonumber(ARGV[4])
local seq = redis.call('INCRBY', B .. ':seq', count_jobs) - count_jobs
local out, ready, scheduled = {}, {}, {}
local plain = { pending = 0, scheduled = 0, waiting_children = 0 } -- jobs without a tenant
local at = 5 -- where the next record starts
for i = 1, count_jobs do
    local id, state, priority, run_at = ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
    local dedup_key, tenant = ARGV[at + 4] ~= '' and ARGV[at + 4], ARGV[at + 5] ~= '' and ARGV[at + 5]
    local first = at + 10
    local last = first + tonumber(ARGV[at + 9]) - 1
    local job = dedup_key and { id = id, state = state, run_at = run_at, mode = ARGV[at + 7],
        until_ = ARGV[at + 8], first = first, last = last }
    local child = ARGV[at + 6] == '1'
    at = last + 1
    local holder = dedup_key and redis.call('HGET', DEDUP, dedup_key)
    if holder == id or (holder and not LIVE[redis.call('HGET', job_key(holder), 'state') or '']) then
        holder = false -- a replayed call, or a stale entry
    end
    holder = dedup_key and throttled(job, dedup_key) or holder
    seq = seq + 1
    if holder then
        out[#out + 1] = i
        out[#out + 1] = holder
        debounce(job, holder, ready, scheduled)
    elseif redis.call('ZADD', JOBS, 'NX', seq, id) == 1 then -- 0: stored by a replayed call
        local key = job_key(id)
        redis.call('HSET', key, 'seq', seq, 'attempts', '0', unpack(ARGV, first, last))
        added(id, state, tenant, first)
        if child and redis.call('DEL', void_key(id)) == 1 then
            -- its parent's subtree was cancelled while this child was on its way
            local now = redis.call('HGET', key, 'created_at')
            finish(id, 'cancelled', 0, tenant, nil, now)
            flow_event(id, 'end', 'cancelled', false)
        else
            if state == 'pending' then
                ready[#ready + 1] = ready_score(priority, seq)
                ready[#ready + 1] = id
            elseif state == 'scheduled' then
                scheduled[#scheduled + 1] = run_at
                scheduled[#scheduled + 1] = id
            end
            if dedup_key then
                redis.call('HSET', DEDUP, dedup_key, id)
                take_throttle(job, dedup_key)
            end
            if tenant then count(state, 0, tenant, 1) else plain[state] = plain[state] + 1 end
        end
    end
end
if #ready > 0 then redis.call('ZADD', READY, unpack(ready)) end
if #scheduled > 0 then redis.call('ZADD', SCHEDULED, unpack(scheduled)) end
for state, n in pairs(plain) do count(state, 0, nil, n) end
local adopted = {}
if ARGV[3] ~= '' then adopted = adopt(cjson.decode(ARGV[3])) end
flush_counts()
if #ready + #scheduled > 0 then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return { out, adopted, posted_reply() }
