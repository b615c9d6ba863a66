-- KEYS[1] is "{prefix}". Record that the jobs with ids ARGV[2] (JSON list) live in
-- queue ARGV[1]; sent before their enqueue, so a reader never finds a job it cannot locate.
local ids = cjson.decode(ARGV[2])
local fields = {}
for _, id in ipairs(ids) do
    fields[#fields + 1] = id
    fields[#fields + 1] = ARGV[1]
    if #fields >= 1000 then
        redis.call('HSET', B .. ':ids', unpack(fields))
        fields = {}
    end
end
if #fields > 0 then redis.call('HSET', B .. ':ids', unpack(fields)) end
return 0
