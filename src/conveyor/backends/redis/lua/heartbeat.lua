-- KEYS[1] is "{prefix}". Record worker ARGV[1] (JSON info ARGV[2]) as seen at
-- ARGV[3], and forget workers not seen since ARGV[4].
local workers, seen = B .. ':workers', B .. ':workers:seen'
redis.call('HSET', workers, ARGV[1], ARGV[2])
redis.call('ZADD', seen, ARGV[3], ARGV[1])
local gone = redis.call('ZRANGEBYSCORE', seen, '-inf', '(' .. ARGV[4])
for _, id in ipairs(gone) do
    redis.call('HDEL', workers, id)
    redis.call('ZREM', seen, id)
end
return 0
