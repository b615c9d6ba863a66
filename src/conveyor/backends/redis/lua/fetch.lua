-- Claim up to ARGV[2] ready jobs of one queue for worker ARGV[3], lease until ARGV[4].
-- ARGV[1] now, ARGV[5] how many jobs one call looks at, at most (per step: due
-- scheduled jobs promoted, parked jobs released, jobs examined), ARGV[6] '1' to
-- claim round-robin across groups (tenants), ARGV[7] the queue's name, ARGV[8]
-- and ARGV[9] the queue's rate limit and window, or ''.
-- Due scheduled jobs are promoted first (even in a paused queue, like any
-- clock-driven change); a paused queue then hands out nothing. Jobs whose key
-- or group holds them back are parked (limits.lua) and the jobs behind them
-- claimed. Returns {the claimed jobs as a JSON array of job objects, in claim
-- order; 1 if the call stopped at its budget with jobs left to examine, else 0}.
local now, limit, worker, lease = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local budget, clock = tonumber(ARGV[5]), tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', SCHEDULED, '-inf', now, 'LIMIT', 0, budget)
for _, id in ipairs(due) do
    local key = job_key(id)
    local j = redis.call('HMGET', key, 'priority', 'seq', 'attempts', 'tenant')
    redis.call('ZREM', SCHEDULED, id)
    redis.call('HSET', key, 'state', 'pending')
    redis.call('ZADD', READY, ready_score(j[1], j[2]), id)
    count('scheduled', j[3], j[4], -1)
    count('pending', j[3], j[4], 1)
end

-- Fair claiming: {p:q}:fair:<group> holds a group's (or tenant's) pending jobs
-- by ready score, and {p:q}:fair the groups that have any, scored priority *
-- 2^40 + turn: a group that had a job claimed goes to the back of its
-- priority, so groups take turns. The ready index is then only an inbox.
local FAIR, TURN = B .. ':fair', B .. ':fair-turn'
local function fair_key(group) return B .. ':fair:' .. group end
local function take_turn(group, priority)
    redis.call('ZADD', FAIR, priority * PRIORITY_UNIT + redis.call('INCR', TURN), group)
end
local function sort_in(n)
    local popped = redis.call('ZPOPMIN', READY, n)
    for i = 1, #popped, 2 do
        local id, score = popped[i], popped[i + 1]
        local j = redis.call('HMGET', job_key(id), 'state', 'group', 'tenant')
        if j[1] == 'pending' then
            local group, priority = j[2] or j[3] or '', math.floor(tonumber(score) / PRIORITY_UNIT)
            redis.call('ZADD', fair_key(group), score, id)
            local at = tonumber(redis.call('ZSCORE', FAIR, group))
            if not at then
                take_turn(group, priority)
            elseif math.floor(at / PRIORITY_UNIT) > priority then -- a more urgent head keeps its turn
                redis.call('ZADD', FAIR, priority * PRIORITY_UNIT + at % PRIORITY_UNIT, group)
            end
        end
    end
end
local function fair_pop()
    while true do
        local top = redis.call('ZPOPMIN', FAIR)
        if #top == 0 then return nil end
        local group = top[1]
        local head = redis.call('ZPOPMIN', fair_key(group))
        local after = redis.call('ZRANGE', fair_key(group), 0, 0, 'WITHSCORES')
        if #after > 0 then take_turn(group, math.floor(tonumber(after[2]) / PRIORITY_UNIT)) end
        if #head > 0 then return head[1], head[2] end
    end
end

local claimed = {}
-- Claim job `id`, whose hash `job` (read by `consider`) is updated here to what
-- the claim writes, so it is returned and its event built without reading it again.
local function claim(id, job)
    local attempts = tonumber(job.attempts) + 1
    job.attempts, job.state, job.worker_id, job.lease_until, job.started_at =
        int(attempts), 'running', worker, lease, now
    redis.call('HSET', job_key(id), 'attempts', job.attempts, 'state', 'running', 'worker_id', worker,
        'lease_until', lease, 'started_at', now)
    append_event(id, 'started', job.type, job.tenant, 'running', job.percent, job.message, now)
    redis.call('ZADD', RUNNING, lease, id)
    count('pending', attempts - 1, job.tenant, -1)
    count('running', attempts, job.tenant, 1)
    claimed[#claimed + 1] = job
end

-- Claim job `id` (ready score `score`), or park it if its group is full or its
-- key holds it back. Entries of jobs no longer pending (cancelled, removed,
-- claimed from another index) are dropped.
local function consider(id, score)
    local job = job_object(id)
    if job.state ~= 'pending' then return end
    local group, group_limit = job.group, tonumber(job.group_limit)
    if group and group_limit and group_count(group, group_limit) >= group_limit then
        return park('g:' .. group, id, score, clock + GROUP_RECHECK)
    end
    if job.key then
        local wait = key_take(bucket(job.key, tonumber(job.rate_limit), tonumber(job.rate_per), clock), clock, id)
        if wait then return park('k:' .. job.key, id, score, wait) end
    end
    if group and group_limit then
        redis.call('SADD', group_running(group), id)
        running_in[group] = running_in[group] + 1
    end
    claim(id, job)
end

local more = 0
if limit > 0 and redis.call('EXISTS', B .. ':paused') == 0 then
    local queue_bucket
    if ARGV[8] ~= '' then
        queue_bucket = bucket('queue:' .. ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9]), clock)
        limit = math.min(limit, math.floor(queue_bucket.tokens))
    end
    if limit > 0 then
        release(clock, budget)
        local fair = ARGV[6] == '1' or redis.call('EXISTS', FAIR) == 1
        if fair then sort_in(budget) end
        while #claimed < limit and budget > 0 do
            if fair then
                local id, score = fair_pop()
                if not id then break end
                budget = budget - 1
                consider(id, score)
            else
                local popped = redis.call('ZPOPMIN', READY, math.min(limit - #claimed, budget))
                if #popped == 0 then break end
                for i = 1, #popped, 2 do consider(popped[i], popped[i + 1]) end
                budget = budget - #popped / 2
            end
        end
        if #claimed < limit and redis.call('EXISTS', READY, FAIR) > 0 then more = 1 end
    end
    if queue_bucket and #claimed > 0 then
        queue_bucket.tokens = queue_bucket.tokens - #claimed
        queue_bucket.dirty = true
    end
end
save_buckets()
flush_counts()
return { jobs_json(claimed), more }
