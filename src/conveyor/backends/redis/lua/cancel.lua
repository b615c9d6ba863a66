-- Cancel job ARGV[1] at ARGV[2] (now): a job that is not running ends at once;
-- a running one is flagged, and its worker stops it cooperatively. Either way
-- an event asks for its descendants to be cancelled (and tells its parent of
-- an end).
-- Returns {the job as a JSON object, posted outbox entries}, or nil if there is no such job.
local id, now = ARGV[1], ARGV[2]
local key = job_key(id)
local j = redis.call('HMGET', key, 'state', 'attempts', 'tenant', 'dedup_key')
local state = j[1]
if not state then return false end
if state == 'pending' or state == 'scheduled' or state == 'waiting_children' then
    if INDEX[state] then redis.call('ZREM', INDEX[state], id) end
    count(state, j[2], j[3], -1)
    finish(id, 'cancelled', j[2], j[3], j[4], now)
    flush_counts()
    flow_event(id, 'end', 'cancelled', true)
elseif state == 'running' then
    redis.call('HSET', key, 'cancel', '1')
    flow_event(id, 'down', nil, true)
end
repost(id)
return { cjson.encode(job_object(id)), posted_reply() }
