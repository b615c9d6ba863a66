-- Merge declared phases into job ARGV[1], if it exists: ARGV[2..] are hash
-- field, value pairs ("ph:<name>", "weight|total").
if redis.call('EXISTS', job_key(ARGV[1])) == 1 then
    redis.call('HSET', job_key(ARGV[1]), unpack(ARGV, 2))
end
return 0
