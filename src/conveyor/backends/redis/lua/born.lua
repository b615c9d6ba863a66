-- Confirm children counted by adopt (common.lua) for parents in this queue.
-- ARGV[1] JSON list of [parent id, child id, '1' if it was stored else '0', spawn key or ''].
-- A stored child leaves UNBORN; one that was not (its dedup key was taken) is
-- uncounted again, so its parent does not wait for it. Idempotent.
for _, b in ipairs(cjson.decode(ARGV[1])) do
    local parent, child, stored, spawn_key = b[1], b[2], b[3], b[4]
    redis.call('HDEL', UNBORN, child)
    local kids = kids_key(parent)
    local entry = redis.call('HGET', kids, child)
    local gen, status, rest = string.match(entry or '', '^(%d+)|(%a)|(.*)$')
    if status == 'u' and stored == '1' then
        redis.call('HSET', kids, child, gen .. '|l|' .. rest)
    elseif status == 'u' then
        redis.call('HDEL', kids, child)
        if spawn_key ~= '' and redis.call('HGET', spawns_key(parent), spawn_key) == child then
            redis.call('HDEL', spawns_key(parent), spawn_key)
        end
        local pkey = job_key(parent)
        redis.call('HINCRBY', pkey, 'total', -1)
        if tonumber(redis.call('HGET', pkey, 'left') or '0') > 0 then
            redis.call('HINCRBY', pkey, 'left', -1)
        end
    end
end
return 0
