-- Append log lines of existing jobs, keeping the newest ARGV[1] per job.
-- ARGV[2..] pairs of job id and a JSON line {at, line}.
local cap = tonumber(ARGV[1])
local touched = {}
for i = 2, #ARGV, 2 do
    local id = ARGV[i]
    if touched[id] or redis.call('EXISTS', job_key(id)) == 1 then
        redis.call('RPUSH', logs_key(id), ARGV[i + 1])
        touched[id] = true
    end
end
for id in pairs(touched) do redis.call('LTRIM', logs_key(id), -cap, -1) end
return 0
