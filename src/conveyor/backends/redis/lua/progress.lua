-- Record progress of running jobs. ARGV[1] JSON list of {id, percent?, message?, step?},
-- ARGV[2] when it was reported ('' if unknown). A job whose progress changed gets an event.
local at = ARGV[2] ~= '' and ARGV[2] or nil
for _, u in ipairs(cjson.decode(ARGV[1])) do
    local key = job_key(u.id)
    if redis.call('HGET', key, 'state') == 'running' then
        local names = { 'percent', 'message', 'step' }
        local old = redis.call('HMGET', key, unpack(names))
        local fields, changed = {}, false
        for i, name in ipairs(names) do
            if u[name] then
                fields[#fields + 1] = name
                fields[#fields + 1] = u[name]
                if old[i] ~= u[name] then changed = true end
            end
        end
        if changed then
            redis.call('HSET', key, unpack(fields))
            emit(u.id, 'progress', at)
        end
    end
end
return 0
