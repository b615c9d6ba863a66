-- Add item-level errors to the bags of jobs in this queue. ARGV is job id,
-- field (JSON [kind, item]), message, at, ... An entry already in the bag keeps
-- its place and time and takes the new message. Jobs that do not exist are skipped.
for i = 1, #ARGV, 4 do
    local id, field, message, at = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    if redis.call('EXISTS', job_key(id)) == 1 then
        local key = bag_key(id)
        local old = redis.call('HGET', key, field)
        if old then
            local n, was = string.match(old, '^(%d+)|([^|]*)|')
            redis.call('HSET', key, field, n .. '|' .. was .. '|' .. message)
        else
            redis.call('HSET', key, field, int(redis.call('HLEN', key) + 1) .. '|' .. at .. '|' .. message)
        end
    end
end
return 0
