-- Delete job ARGV[1] with its errors, logs, error bag and children index. Returns 1, or 0 if there was no such job.
local id = ARGV[1]
local key = job_key(id)
local j = redis.call('HMGET', key, 'state', 'attempts', 'tenant', 'dedup_key')
local state = j[1]
if not state then return 0 end
emit(id, 'removed', nil)
if INDEX[state] then redis.call('ZREM', INDEX[state], id) end
redis.call('ZREM', JOBS, id)
count(state, j[2], j[3], -1)
if j[4] and LIVE[state] and redis.call('HGET', DEDUP, j[4]) == id then
    redis.call('HDEL', DEDUP, j[4])
end
redis.call('DEL', own_keys(id))
flush_counts()
return 1
