-- Deliver children's flow events to their parents, all in this queue.
-- ARGV[1] now, ARGV[2] wake channel, ARGV[3] queue name, ARGV[4] JSON list of
-- {id, q, events}: one child (of queue q) with its undelivered events, oldest first.
-- Idempotent: the parent's children index keeps, per child, the life (`gen`) it
-- knows of and whether that life ended, so a replayed event changes nothing.
-- A child's end takes one off its parent's children_pending (never below 0). A
-- live parent then fails at once if the child failed under fail_parent, or wakes
-- if it was waiting and none are left. A new life of a child makes a waiting
-- parent wait for it again.
-- Returns the outbox entries posted here (a parent that ended has a parent to
-- tell, or descendants to cancel), and any a parent still had undelivered.
local now = ARGV[1]

local function apply(child, event)
    local parent = event.parent
    local pkey = job_key(parent)
    local pstate = redis.call('HGET', pkey, 'state')
    local entry = pstate and redis.call('HGET', kids_key(parent), child)
    if not entry then return end -- the parent was removed
    repost(parent)
    local gen, status, rest = string.match(entry, '^(%d+)|(%a)|(.*)$')
    gen = tonumber(gen)
    local life = tonumber(event.gen)
    if life < gen then return end -- an event of an earlier life, already applied
    if life > gen then
        gen, status = life, 'l'
        if pstate == 'waiting_children' then redis.call('HINCRBY', pkey, 'left', 1) end
    end
    if event.kind == 'end' and status ~= 'e' then
        status = 'e'
        local left = tonumber(redis.call('HGET', pkey, 'left') or '0')
        if left > 0 then
            left = left - 1
            redis.call('HSET', pkey, 'left', int(left))
        end
        if LIVE[pstate] then
            if event.state == 'failed' and event.policy ~= 'continue' then
                fail_for_child(parent, pstate, child, event.error, event.tenant, now)
            elseif pstate == 'waiting_children' and left == 0 then
                wake(parent, now)
            end
        end
    end
    redis.call('HSET', kids_key(parent), child, int(gen) .. '|' .. status .. '|' .. rest)
end

for _, c in ipairs(cjson.decode(ARGV[4])) do
    for _, event in ipairs(c.events) do
        if event.parent and (event.kind == 'end' or event.kind == 'retry') then apply(c.id, event) end
    end
end
flush_counts()
if woken then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return posted_reply()
