-- Take back running jobs whose lease ended before ARGV[1] (now), at most ARGV[4].
-- A job whose cancellation was requested is cancelled; any other gets a
-- WorkerLost error for the attempt, then goes back to pending, or fails when
-- it has no attempts left. ARGV[2] wake channel, ARGV[3] queue name,
-- ARGV[5] the WorkerLost message.
-- A job that ends posts an event for its parent.
-- Returns {requeued ids, failed ids, cancelled ids, posted outbox entries}.
local now = ARGV[1]
local requeued, failed, cancelled = {}, {}, {}
local expired = redis.call('ZRANGEBYSCORE', RUNNING, '-inf', '(' .. now, 'LIMIT', 0, tonumber(ARGV[4]))
for _, id in ipairs(expired) do
    local key = job_key(id)
    local j = redis.call('HMGET', key, 'attempts', 'max_attempts', 'cancel', 'tenant', 'dedup_key',
        'priority', 'seq')
    local attempts, tenant = tonumber(j[1]), j[4]
    redis.call('ZREM', RUNNING, id)
    redis.call('HDEL', key, 'lease_until')
    count('running', attempts, tenant, -1)
    if j[3] == '1' then
        finish(id, 'cancelled', attempts, tenant, j[5], now)
        flow_event(id, 'end', 'cancelled', false)
        cancelled[#cancelled + 1] = id
    else
        local err = '{"attempt": ' .. int(attempts) .. ', "at": ' .. now
            .. ', "type": "WorkerLost", "message": ' .. cjson.encode(ARGV[5]) .. ', "traceback": null}'
        redis.call('HSET', key, 'error', err)
        redis.call('RPUSH', errors_key(id), err)
        if attempts >= tonumber(j[2]) then
            finish(id, 'failed', attempts, tenant, j[5], now)
            flow_event(id, 'end', 'failed', false)
            failed[#failed + 1] = id
        else
            redis.call('HSET', key, 'state', 'pending', 'run_at', now)
            emit(id, 'retrying', now)
            redis.call('ZADD', READY, ready_score(j[6], j[7]), id)
            count('pending', attempts, tenant, 1)
            requeued[#requeued + 1] = id
        end
    end
end
flush_counts()
if #requeued > 0 then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return { requeued, failed, cancelled, posted_reply() }
