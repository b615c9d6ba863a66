-- KEYS[1] is "{prefix}". Fire one tick of schedule ARGV[1]: a compare-and-set
-- of its next tick from ARGV[2] to ARGV[3] (exact strings, as stored), so of
-- all the schedulers racing for a tick exactly one gets 1 back.
-- ARGV[4] '' (a missed tick skipped) or the id of the tick's job, ARGV[5] its
-- queue, ARGV[6] its ledger entry. The job itself lives in its queue's slot,
-- which this script cannot reach: the winner records the job in the ledger
-- (and its id -> queue lookup) here, in the same step as the compare-and-set,
-- then stores it with an enqueue call that is idempotent on the job id and
-- removes the ledger entry; `recover` stores what a dead winner left behind.
local NEXT = B .. ':schedules:next'
local name, tick, id = ARGV[1], ARGV[2], ARGV[4]
if redis.call('HGET', NEXT, name) ~= tick then return 0 end
redis.call('HSET', NEXT, name, ARGV[3])
redis.call('HSET', B .. ':schedules:ran', name, tick)
if id ~= '' then
    redis.call('HSET', B .. ':schedules:job', name, id)
    redis.call('HSET', B .. ':ids', id, ARGV[5])
    redis.call('HSET', B .. ':schedules:fired', id, ARGV[6])
end
return 1
