-- Extend the leases worker ARGV[1] holds in this queue to ARGV[2].
-- ARGV[3..] job ids. Returns {lost ids, ids whose cancellation was requested}.
local worker, lease = ARGV[1], ARGV[2]
local lost, cancel = {}, {}
for i = 3, #ARGV do
    local id = ARGV[i]
    local key = job_key(id)
    local j = redis.call('HMGET', key, 'state', 'worker_id', 'cancel')
    if j[1] == 'running' and j[2] == worker then
        redis.call('HSET', key, 'lease_until', lease)
        redis.call('ZADD', RUNNING, lease, id)
        if j[3] == '1' then cancel[#cancel + 1] = id end
    else
        lost[#lost + 1] = id
    end
end
return { lost, cancel }
