-- Copy global key records (key_fact.lua) into this queue's slot, where fetch
-- reads them. ARGV[1] wake channel, ARGV[2] queue name, ARGV[3] JSON object
-- key -> record. Each change applies once, whatever the order of arrival: a
-- record older than the copy's is skipped; a pause is set as recorded; the
-- blocked-until time only moves later; breaker fields apply when newer
-- (the copy's own half-open probe is not undone by an unrelated change); a
-- fed token count caps the bucket, both refilled to the later of the two times.
-- A key that may run again wakes the queue's workers.
local wake = false
for name, f in pairs(cjson.decode(ARGV[3])) do
    local key = key_state(name)
    local c = redis.call('HMGET', key, 'v', 'bv', 'fv', 'until', 'paused', 'tokens', 'at', 'cap', 'per')
    if tonumber(f.v) > (tonumber(c[1]) or 0) then
        local free = false
        redis.call('HSET', key, 'v', f.v, 'paused', f.paused)
        if f.paused == '0' and c[5] == '1' then free = true end
        if tonumber(f['until']) > (tonumber(c[4]) or 0) then redis.call('HSET', key, 'until', f['until']) end
        if tonumber(f.bv) > (tonumber(c[2]) or 0) then
            redis.call('HSET', key, 'bv', f.bv, 'failures', f.failures, 'breaker', f.breaker)
            free = free or f.breaker == 'closed'
        end
        if f.rem and tonumber(f.fv) > (tonumber(c[3]) or 0) then
            local fed, rem = tonumber(f.fed), tonumber(f.rem)
            local at, tokens, cap, per = tonumber(c[7]), tonumber(c[6]), tonumber(c[8]), tonumber(c[9])
            if cap and at then
                local t = math.max(at, fed)
                tokens = math.min(cap, tokens + (t - at) * (cap / per))
                rem = math.min(cap, rem + (t - fed) * (cap / per))
                redis.call('HSET', key, 'fv', f.fv, 'tokens', math.min(tokens, rem), 'at', t)
            else
                redis.call('HSET', key, 'fv', f.fv, 'tokens', rem, 'at', fed)
            end
        end
        redis.call('SADD', KEY_NAMES, name)
        if free and redis.call('ZADD', HELD, 'XX', 'CH', 0, 'k:' .. name) == 1 then wake = true end
    end
end
if wake then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return 0
