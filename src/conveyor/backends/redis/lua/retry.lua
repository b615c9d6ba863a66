-- Put failed or cancelled job ARGV[1] back to pending with a fresh attempt
-- budget, at ARGV[2] (now); it keeps its place in the FIFO order. It starts a
-- new life (`gen`), which its parent is told of: a waiting parent waits for it again.
-- ARGV[3] wake channel, ARGV[4] queue name.
-- Returns {the job as a JSON object (unchanged if it was in another state), posted
-- outbox entries}, nil if there is no such job, or 'dedup-conflict' if another live
-- job holds its dedup key.
local id, now = ARGV[1], ARGV[2]
local key = job_key(id)
local j = redis.call('HMGET', key, 'state', 'attempts', 'tenant', 'dedup_key', 'priority', 'seq')
local state, dedup_key = j[1], j[4]
if not state then return false end
if state == 'failed' or state == 'cancelled' then
    if dedup_key then
        local holder = redis.call('HGET', DEDUP, dedup_key)
        if holder and holder ~= id then return 'dedup-conflict' end
        redis.call('HSET', DEDUP, dedup_key, id)
    end
    redis.call('ZREM', FINISHED, id)
    count(state, j[2], j[3], -1)
    redis.call('HSET', key, 'state', 'pending', 'attempts', '0', 'run_at', now, 'percent', '0')
    redis.call('HDEL', key, 'finished_at', 'lease_until', 'cancel')
    redis.call('HINCRBY', key, 'gen', 1)
    emit(id, 'requeued', now)
    redis.call('ZADD', READY, ready_score(j[5], j[6]), id)
    count('pending', 0, j[3], 1)
    flush_counts()
    flow_event(id, 'retry', nil, false)
    redis.call('PUBLISH', ARGV[3], ARGV[4])
end
repost(id)
return { cjson.encode(job_object(id)), posted_reply() }
