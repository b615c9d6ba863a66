-- KEYS[1] is "{prefix}". Forget worker ARGV[1] (a clean exit).
redis.call('HDEL', B .. ':workers', ARGV[1])
redis.call('ZREM', B .. ':workers:seen', ARGV[1])
return 0
