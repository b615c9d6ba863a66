-- Store new jobs of one queue, honouring dedup keys, then count new children of
-- parents in this queue (see `adopt` in common.lua).
-- ARGV[1] wake channel, ARGV[2] queue name, ARGV[3] JSON list of jobs, each
-- [id, state, priority, run_at, dedup_key or '', tenant or '', [field, value, ...],
-- '1' for a child else '', and for dedup modes other than live: mode, until or '']
-- (every value a string; the flat list is the hash as stored, absent fields are None),
-- ARGV[4] '' or a JSON list of adoption groups for `adopt`.
-- Returns {collisions, adopted, posted}: collisions is a flat array of (position
-- in the list, id of the live job holding its dedup key, or of the job that took
-- it with throttle within its TTL; see dedup.lua) for the jobs that were
-- not stored (every other job was, or, for a replayed call, already had been);
-- adopted is what `adopt` returned ({} without ARGV[4]); posted the outbox
-- entries written (a child cancelled before it was stored is stored cancelled).
-- A stored job's event, from the record in hand rather than a read of the new hash: the
-- flat list starts with fixed fields (records.py), type 2nd and created_at 9th; a new job
-- has no progress yet.
local function added(id, state, tenant, flat)
    append_event(id, 'added', flat[4], tenant, state, nil, nil, flat[18])
end

local jobs = cjson.decode(ARGV[3])
local seq = redis.call('INCRBY', B .. ':seq', #jobs) - #jobs
local out, ready, scheduled = {}, {}, {}
local plain = { pending = 0, scheduled = 0, waiting_children = 0 } -- jobs without a tenant
for i, job in ipairs(jobs) do
    local id, state, priority, run_at = job[1], job[2], job[3], job[4]
    local dedup_key, tenant = job[5] ~= '' and job[5], job[6] ~= '' and job[6]
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
        redis.call('HSET', key, 'seq', seq, 'attempts', '0', unpack(job[7]))
        added(id, state, tenant, job[7])
        if job[8] == '1' and redis.call('DEL', void_key(id)) == 1 then
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
if ARGV[4] ~= '' then adopted = adopt(cjson.decode(ARGV[4])) end
flush_counts()
if #ready + #scheduled > 0 then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return { out, adopted, posted_reply() }
