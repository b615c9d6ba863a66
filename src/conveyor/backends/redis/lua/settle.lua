-- Apply how attempts ended, each only if the worker still owns that attempt
-- (state running, same worker, same attempt number): a late outcome from a
-- worker that lost its lease changes nothing.
-- ARGV[1] now, ARGV[2] wake channel, ARGV[3] queue name, ARGV[4] JSON list of
-- {kind, id, worker, attempt, result?, error?, run_at?, then?} (result, error: JSON text).
-- A job that ends posts an event for its parent; one that starts waiting for
-- children with none left to wait for wakes at once.
-- Returns {how many were applied, posted outbox entries}.
local now = ARGV[1]
local applied = 0
for _, s in ipairs(cjson.decode(ARGV[4])) do
    local id = s.id
    local key = job_key(id)
    local j = redis.call('HMGET', key, 'state', 'worker_id', 'attempts', 'tenant', 'dedup_key',
        'priority', 'seq', 'left', 'parent_id', 'key', 'group', 'type', 'message')
    local attempts = tonumber(j[3])
    if j[1] == 'running' and j[2] == s.worker and attempts == tonumber(s.attempt) then
        local tenant = j[4]
        local ended = s.kind == 'complete' or s.kind == 'wait' -- the attempt returned: its result is kept
        redis.call('ZREM', RUNNING, id)
        if ended and not s.result then
            redis.call('HDEL', key, 'lease_until', 'result')
        else
            redis.call('HDEL', key, 'lease_until')
        end
        count('running', attempts, tenant, -1)
        if s.kind == 'complete' then
            if s.result then
                redis.call('HSET', key, 'percent', '100', 'result', s.result)
            else
                redis.call('HSET', key, 'percent', '100')
            end
            finish(id, 'completed', attempts, tenant, j[5], now, { j[12], '100', j[13] })
            if j[9] then flow_event(id, 'end', 'completed', false) end
        elseif s.kind == 'wait' then
            if s.result then redis.call('HSET', key, 'result', s.result) end
            redis.call('HSET', key, 'state', 'waiting_children', 'then', s['then'] or 'complete')
            redis.call('HINCRBY', key, 'stage', 1)
            count('waiting_children', attempts, tenant, 1)
            emit(id, 'waiting', now)
            if tonumber(j[8] or '0') == 0 then wake(id, now) end
        elseif s.kind == 'retry' or s.kind == 'snooze' then
            local due = s.run_at or now
            if s.kind == 'snooze' then attempts = redis.call('HINCRBY', key, 'attempts', -1) end
            local state = 'scheduled'
            if tonumber(due) <= tonumber(now) then state = 'pending' end
            redis.call('HSET', key, 'state', state, 'run_at', due)
            if s.error then redis.call('HSET', key, 'error', s.error) end
            if state == 'pending' then
                redis.call('ZADD', READY, ready_score(j[6], j[7]), id)
            else
                redis.call('ZADD', SCHEDULED, due, id)
            end
            count(state, attempts, tenant, 1)
            emit(id, 'retrying', now)
            woken = true
        else
            if s.error then redis.call('HSET', key, 'error', s.error) end
            local state = 'cancelled'
            if s.kind == 'fail' then state = 'failed' end
            finish(id, state, attempts, tenant, j[5], now)
            if j[9] then flow_event(id, 'end', state, false) end
        end
        if s.error and s.kind ~= 'snooze' then redis.call('RPUSH', errors_key(id), s.error) end
        if key_settled(id, j[10], j[11], s.kind == 'complete') then woken = true end
        applied = applied + 1
    else
        repost(id)
    end
end
flush_counts()
if woken then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return { applied, posted_reply() }
