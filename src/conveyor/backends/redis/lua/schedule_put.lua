-- KEYS[1] is "{prefix}". Store schedule ARGV[1]: its definition ARGV[2] (JSON,
-- opaque here except for its "timing" field) and, when it is new or its timing
-- (cron, every, jitter) changed, its next tick ARGV[3]. Any other change keeps
-- the stored next tick, so redeploying the same schedule never skips or
-- repeats a tick. Returns 1 when the next tick was (re)set.
local DEFS, NEXT = B .. ':schedules', B .. ':schedules:next'
local name, definition = ARGV[1], ARGV[2]
local old = redis.call('HGET', DEFS, name)
redis.call('HSET', DEFS, name, definition)
if old and cjson.decode(old).timing == cjson.decode(definition).timing then return 0 end
redis.call('HSET', NEXT, name, ARGV[3])
return 1
