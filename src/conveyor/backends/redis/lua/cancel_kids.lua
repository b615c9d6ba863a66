-- Cancel children of this queue whose ancestor was cancelled or failed, at ARGV[1] (now).
-- ARGV[2] JSON list of [id, '1' if its parent has not yet seen it stored, else '0'].
-- A job that is not running ends at once (its parent is told through the
-- outbox); a running one is flagged. A child not stored yet is marked, so that
-- it is stored cancelled (enqueue.lua). Idempotent.
-- Returns {ids that have children of their own, posted outbox entries}.
local now = ARGV[1]
local below = {}
for _, k in ipairs(cjson.decode(ARGV[2])) do
    local id = k[1]
    local key = job_key(id)
    local j = redis.call('HMGET', key, 'state', 'attempts', 'tenant', 'dedup_key')
    local state = j[1]
    if not state then
        if k[2] == '1' then redis.call('SET', void_key(id), '1') end
    elseif state == 'pending' or state == 'scheduled' or state == 'waiting_children' then
        if INDEX[state] then redis.call('ZREM', INDEX[state], id) end
        count(state, j[2], j[3], -1)
        finish(id, 'cancelled', j[2], j[3], j[4], now)
        flow_event(id, 'end', 'cancelled', false)
    elseif state == 'running' then
        redis.call('HSET', key, 'cancel', '1')
    end
    repost(id)
    if redis.call('EXISTS', kids_key(id)) == 1 then below[#below + 1] = id end
end
flush_counts()
return { below, posted_reply() }
