-- KEYS[1] is "{prefix}". Forget schedule ARGV[1]; returns 1 if it existed.
-- A job it already fired is left alone (and stays in the ledger until stored).
local name = ARGV[1]
redis.call('HDEL', B .. ':schedules:next', name)
redis.call('HDEL', B .. ':schedules:ran', name)
redis.call('HDEL', B .. ':schedules:job', name)
return redis.call('HDEL', B .. ':schedules', name)
