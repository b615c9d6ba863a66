-- Record progress of running jobs. ARGV[1] JSON list of {id, percent?, message?, step?}.
for _, u in ipairs(cjson.decode(ARGV[1])) do
    local key = job_key(u.id)
    if redis.call('HGET', key, 'state') == 'running' then
        local fields = {}
        for _, name in ipairs({ 'percent', 'message', 'step' }) do
            if u[name] then
                fields[#fields + 1] = name
                fields[#fields + 1] = u[name]
            end
        end
        if #fields > 0 then redis.call('HSET', key, unpack(fields)) end
    end
end
return 0
