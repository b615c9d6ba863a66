-- KEYS[1] is "{prefix}". Change the global record of key ARGV[1], the source of
-- truth for what is said about a key from outside any queue; it is copied into
-- each queue's slot (key_apply.lua). ARGV[2] what happened:
--   'pause'   ARGV[3] '1' paused, '0' resumed
--   'feed'    ARGV[3] now, ARGV[4] tokens the remote says are left (or ''),
--             ARGV[5] blocked until (the later of this and the stored one wins)
--   'failure' ARGV[3] now + cooldown, ARGV[4] threshold, ARGV[5] the newest
--             breaker version some queue closed at on a success (or ''): a
--             success since the last failure resets the count first
-- Every value is a string, times exact as given; `v` counts changes, `bv`
-- breaker changes and `fv` feeds, so a queue applies each change once.
-- Returns the record as JSON.
local FACTS = B .. ':keyfacts'
local name, what = ARGV[1], ARGV[2]
local stored = redis.call('HGET', FACTS, name)
local f = { v = '0', paused = '0', ['until'] = '0', failures = '0', breaker = 'closed', bv = '0', fv = '0' }
if stored then f = cjson.decode(stored) end
local function later(t)
    if tonumber(t) > tonumber(f['until']) then f['until'] = t end
end
f.v = int(tonumber(f.v) + 1)
if what == 'pause' then
    f.paused = ARGV[3]
elseif what == 'feed' then
    later(ARGV[5])
    if ARGV[4] ~= '' then f.rem, f.fed, f.fv = ARGV[4], ARGV[3], int(tonumber(f.fv) + 1) end
else
    if ARGV[5] ~= '' and tonumber(ARGV[5]) >= tonumber(f.bv) then f.failures, f.breaker = '0', 'closed' end
    local failures = tonumber(f.failures) + 1
    f.failures = int(failures)
    if failures >= tonumber(ARGV[4]) then
        f.breaker = 'open'
        later(ARGV[3])
    end
    f.bv = int(tonumber(f.bv) + 1)
end
local record = cjson.encode(f)
redis.call('HSET', FACTS, name, record)
return record
