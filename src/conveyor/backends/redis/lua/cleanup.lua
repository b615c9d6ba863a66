-- Delete finished jobs (with errors, logs, error bags and children indexes), at most ARGV[3] per call:
-- those finished before ARGV[1] if given, else all but the newest ARGV[2].
-- Returns the deleted ids.
local victims = {}
local batch = tonumber(ARGV[3])
if ARGV[1] ~= '' then
    victims = redis.call('ZRANGEBYSCORE', FINISHED, '-inf', '(' .. ARGV[1], 'LIMIT', 0, batch)
else
    local extra = redis.call('ZCARD', FINISHED) - tonumber(ARGV[2])
    if extra > 0 then victims = redis.call('ZRANGE', FINISHED, 0, math.min(extra, batch) - 1) end
end
for _, id in ipairs(victims) do
    local key = job_key(id)
    local j = redis.call('HMGET', key, 'state', 'attempts', 'tenant')
    redis.call('ZREM', FINISHED, id)
    redis.call('ZREM', JOBS, id)
    if j[1] then count(j[1], j[2], j[3], -1) end
    redis.call('DEL', own_keys(id))
end
flush_counts()
return victims
