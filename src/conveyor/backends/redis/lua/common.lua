-- The start of the function library store.py assembles: this file, limits.lua,
-- dedup.lua, then each script's body as one Redis function. The library is
-- loaded once, so the functions below are created once; what depends on the
-- call is set when a call begins: its KEYS and ARGV, state that lives for one
-- call (`on_call` hooks), and the key names built from KEYS[1] (`on_base`
-- hooks, run only when KEYS[1] differs from the previous call's: a worker or
-- producer calls the same few queues over and over).
-- KEYS[1] is a key base: "{prefix:queue}" for queue scripts, "{prefix}" for
-- the worker registry. Every key a script touches starts with that base, so
-- the script stays in one Redis Cluster slot. Keep these suffixes in step
-- with keys.py.
local KEYS, ARGV, B
local base_hooks, call_hooks = {}, {}
local function on_base(hook) base_hooks[#base_hooks + 1] = hook end
local function on_call(hook) call_hooks[#call_hooks + 1] = hook end
local function begin(keys, args)
    KEYS, ARGV = keys, args
    if keys[1] ~= B then
        B = keys[1]
        for _, hook in ipairs(base_hooks) do hook() end
    end
    for _, hook in ipairs(call_hooks) do hook() end
end

local READY, SCHEDULED, RUNNING, FINISHED, JOBS, DEDUP, COUNTS, INDEX, OUTBOX, UNBORN
on_base(function()
    READY, SCHEDULED, RUNNING = B .. ':ready', B .. ':scheduled', B .. ':running'
    FINISHED, JOBS, DEDUP, COUNTS = B .. ':finished', B .. ':jobs', B .. ':dedup', B .. ':counts'
    INDEX = {
        pending = READY, scheduled = SCHEDULED, running = RUNNING,
        completed = FINISHED, failed = FINISHED, cancelled = FINISHED,
    }
    OUTBOX, UNBORN = B .. ':outbox', B .. ':unborn'
end)
local LIVE = { pending = true, scheduled = true, running = true, waiting_children = true }

local function job_key(id) return B .. ':job:' .. id end
local function errors_key(id) return B .. ':errors:' .. id end
local function logs_key(id) return B .. ':logs:' .. id end
local function bag_key(id) return B .. ':bag:' .. id end
local function kids_key(id) return B .. ':kids:' .. id end
local function spawns_key(id) return B .. ':spawns:' .. id end
local function void_key(id) return B .. ':void:' .. id end

-- Numbers passed to redis.call reach Redis exactly (Redis formats them with all
-- the digits a double needs), but Lua's own number-to-string conversion, used by
-- `..`, keeps only 14 significant digits: `int` formats a number for a string.
-- Floats (times) are never formatted here; they arrive from Python as exact
-- strings and are stored as given.
local function int(n) return string.format('%d', n) end

-- Priority first, then enqueue order: seq < 2^40, priority <= 10, all exact in a double.
local function ready_score(priority, seq)
    return tonumber(priority) * 1099511627776 + tonumber(seq)
end

-- Counter changes are summed per call and written once at the end, so a
-- bulk enqueue costs a few HINCRBYs, not one per job. A field that reaches 0
-- is deleted, so an empty queue (or tenant) leaves no counter behind.
local tallies
on_call(function() tallies = {} end)
local function tally(key, field, delta)
    local t = tallies[key]
    if not t then t = {}; tallies[key] = t end
    t[field] = (t[field] or 0) + delta
end

-- A job in `state` with `attempts` made (a "retrying" job is scheduled after a failure).
local function count(state, attempts, tenant, delta)
    local retrying = state == 'scheduled' and tonumber(attempts) > 0
    tally(COUNTS, state, delta)
    if retrying then tally(COUNTS, 'retrying', delta) end
    if tenant then
        local t = B .. ':tenant:' .. tenant
        tally(t, state, delta)
        if retrying then tally(t, 'retrying', delta) end
    end
end

local function flush_counts()
    for key, fields in pairs(tallies) do
        for field, delta in pairs(fields) do
            if delta ~= 0 and redis.call('HINCRBY', key, field, delta) == 0 then
                redis.call('HDEL', key, field)
            end
        end
    end
    tallies = {}
end

-- A job's hash as a JSON object of strings: one reply string instead of a field/value
-- array, which a pure-Python RESP parser reads item by item.
local function job_object(id)
    local flat = redis.call('HGETALL', job_key(id))
    local job = {}
    for i = 1, #flat, 2 do job[flat[i]] = flat[i + 1] end
    return job
end

-- A list of job objects as a JSON array (cjson would encode an empty table as {}).
local function jobs_json(jobs)
    if #jobs == 0 then return '[]' end
    return cjson.encode(jobs)
end

-- Job events for live views: one stream per queue, in the queue's slot, so the
-- script that changes a job appends its event atomically. Trimmed to about
-- EVENTS_MAX entries (`~`: Redis drops whole nodes), which store.py sets in the
-- library's first line. `at` is nil for a change that carries no time. Call after the
-- change, so the entry has the job's new state (remove.lua: before deleting).
local EVENTS
on_base(function() EVENTS = B .. ':events' end)
local function append_event(id, kind, type, tenant, state, percent, message, at)
    local fields = { 'kind', kind, 'job', id, 'type', type, 'state', state, 'percent', percent or '0' }
    if tenant then fields[#fields + 1] = 'tenant'; fields[#fields + 1] = tenant end
    if message then fields[#fields + 1] = 'message'; fields[#fields + 1] = message end
    if at then fields[#fields + 1] = 'at'; fields[#fields + 1] = at end
    redis.call('XADD', EVENTS, 'MAXLEN', '~', EVENTS_MAX, '*', unpack(fields))
end

local function emit(id, kind, at)
    local j = redis.call('HMGET', job_key(id), 'type', 'tenant', 'state', 'percent', 'message')
    append_event(id, kind, j[1], j[2], j[3], j[4], j[5], at)
end

-- A job reached a final state at `now`: index it for retention and free its dedup key.
-- `known`, when the caller has read them: the job's {type, percent, message}
-- after this change, so its event needs no read.
local function finish(id, state, attempts, tenant, dedup_key, now, known)
    redis.call('HSET', job_key(id), 'state', state, 'finished_at', now)
    if known then
        append_event(id, state, known[1], tenant, state, known[2], known[3], now)
    else
        emit(id, state, now)
    end
    redis.call('ZADD', FINISHED, now, id)
    count(state, attempts, tenant, 1)
    if dedup_key and redis.call('HGET', DEDUP, dedup_key) == id then
        redis.call('HDEL', DEDUP, dedup_key)
    end
end

-- -----------------------------------------------------------------------------

-- Every key that belongs to job `id` alone (deleted with it).
local function own_keys(id)
    return job_key(id), errors_key(id), logs_key(id), bag_key(id), kids_key(id), spawns_key(id)
end

-- -----------------------------------------------------------------------------
-- Flows (see flows.py). A job's parent may live in another queue, so another
-- cluster slot: a script never changes the parent itself. It appends an event
-- to the job's entry in this queue's outbox, in the same script as the change
-- that causes it; Python then delivers the job's events to the parent's queue
-- (tell_parent.lua), and removes the entry (ack.lua) once they are applied.
-- Events: 'end' (the job became completed, failed or cancelled), 'retry' (a
-- new life: `gen` counts them), 'down' (its descendants are to be cancelled).
-- An entry accumulates events until acknowledged, so a parent applies one
-- child's events in the order they happened.

local posted -- job id -> its outbox entry as written by this call
local posted_order
local woken -- a job became ready here: the call publishes its queue
on_call(function() posted, posted_order, woken = {}, {}, false end)

local function post(id, event)
    local entry = redis.call('HGET', OUTBOX, id)
    local events = {}
    if entry then events = cjson.decode(entry) end
    events[#events + 1] = event
    local value = cjson.encode(events)
    redis.call('HSET', OUTBOX, id, value)
    if not posted[id] then posted_order[#posted_order + 1] = id end
    posted[id] = value
end

-- Return job `id`'s entry if it has one not yet delivered, though this script
-- posted nothing for it: a call replayed after its reply was lost (or its
-- delivery was interrupted) delivers what the first one posted.
local function repost(id)
    if posted[id] then return end
    local entry = redis.call('HGET', OUTBOX, id)
    if entry then
        posted_order[#posted_order + 1] = id
        posted[id] = entry
    end
end

-- The entries this script wrote, as a flat id, entry, ... array for the reply.
local function posted_reply()
    local flat = {}
    for _, id in ipairs(posted_order) do
        flat[#flat + 1] = id
        flat[#flat + 1] = posted[id]
    end
    return flat
end

-- Record that job `id` ended in `state` ('end'), was retried ('retry') or was
-- asked to stop while running ('down'). `down`: cancel its descendants too.
-- Nothing is recorded when there is no parent to tell and nothing below.
local function flow_event(id, kind, state, down)
    local j = redis.call('HMGET', job_key(id), 'parent_id', 'parent_queue', 'policy', 'error', 'gen', 'tenant')
    if down and redis.call('EXISTS', kids_key(id)) == 0 then down = false end
    local tell = j[1] and kind ~= 'down'
    if not tell and not down then return end
    local event = { kind = kind, gen = j[5] or '0' }
    if state then event.state = state end
    if down then event.down = '1' end
    if tell then
        event.parent = j[1]
        event.pq = j[2]
        event.policy = j[3] or 'fail_parent'
        if state == 'failed' and j[4] then event.error = j[4] end
        if j[6] then event.tenant = j[6] end
    end
    post(id, event)
end

-- Waiting parent `id` has no child left to wait for: it completes, or is
-- queued to run its next step with a fresh attempt budget.
local function wake(id, now)
    local key = job_key(id)
    local j = redis.call('HMGET', key, 'then', 'attempts', 'tenant', 'dedup_key', 'priority', 'seq')
    count('waiting_children', j[2], j[3], -1)
    if j[1] == 'run' then
        redis.call('HSET', key, 'state', 'pending', 'run_at', now, 'attempts', '0')
        emit(id, 'requeued', now)
        redis.call('ZADD', READY, ready_score(j[5], j[6]), id)
        count('pending', 0, j[3], 1)
        woken = true
    else
        redis.call('HSET', key, 'percent', '100')
        finish(id, 'completed', j[2], j[3], j[4], now)
        flow_event(id, 'end', 'completed', false)
    end
end

-- Live job `id` (in `state`) fails because its child `child` failed under the
-- fail_parent policy; a running one is also asked to stop. Its descendants
-- are cancelled and its own parent told (by Python, from the event).
local function fail_for_child(id, state, child, child_error, child_tenant, now)
    local key = job_key(id)
    local j = redis.call('HMGET', key, 'attempts', 'tenant', 'dedup_key')
    if INDEX[state] then redis.call('ZREM', INDEX[state], id) end
    count(state, j[1], j[2], -1)
    local message
    if child_tenant and child_tenant ~= j[2] then
        -- whoever sees the parent may not see that child: neither its id nor its error
        message = "a child job of another tenant failed"
    else
        message = 'child job ' .. child .. ' failed'
        if child_error then
            local e = cjson.decode(child_error)
            message = message .. ': ' .. e.type .. ': ' .. e.message
        end
    end
    local err = '{"attempt": ' .. int(tonumber(j[1])) .. ', "at": ' .. now
        .. ', "type": "ChildFailed", "message": ' .. cjson.encode(message) .. ', "traceback": null}'
    redis.call('HSET', key, 'error', err)
    redis.call('RPUSH', errors_key(id), err)
    if state == 'running' then redis.call('HSET', key, 'cancel', '1') end
    redis.call('HDEL', key, 'lease_until')
    finish(id, 'failed', j[1], j[2], j[3], now)
    flow_event(id, 'end', 'failed', true)
end

-- Count new children of parents in this queue, before they are stored in their
-- own queues. `groups`: {parent, kids = {{id, queue, spawn key or '', record}}}.
-- A parent must be live and not asked to stop. A child whose spawn key its
-- parent already has is not counted: the reply names the holder instead ('' for
-- counted ones; a replayed call counts nobody twice). A counted child stays in
-- UNBORN with its enqueue record until born.lua confirms it was stored, so
-- recover can store it if the caller died in between.
-- Returns a flat array (one item per child, in order), or 'gone:<parent id>'
-- with nothing changed when a parent cannot take children.
local function adopt(groups)
    for _, g in ipairs(groups) do
        local p = redis.call('HMGET', job_key(g.parent), 'state', 'cancel')
        if not (p[1] and LIVE[p[1]] and p[2] ~= '1') then return 'gone:' .. g.parent end
    end
    local reply = {}
    for _, g in ipairs(groups) do
        local pkey, kids, spawns = job_key(g.parent), kids_key(g.parent), spawns_key(g.parent)
        local total = tonumber(redis.call('HGET', pkey, 'total') or '0')
        local added = 0
        for _, k in ipairs(g.kids) do
            local id, queue, spawn_key, record = k[1], k[2], k[3], k[4]
            local holder = spawn_key ~= '' and redis.call('HGET', spawns, spawn_key)
            if holder and holder ~= id then
                reply[#reply + 1] = holder
            else
                reply[#reply + 1] = ''
                if redis.call('HEXISTS', kids, id) == 0 then
                    total = total + 1
                    added = added + 1
                    redis.call('HSET', kids, id, '0|u|' .. int(total) .. '|' .. queue)
                    if spawn_key ~= '' then redis.call('HSET', spawns, spawn_key, id) end
                    redis.call('HSET', UNBORN, id, record)
                end
            end
        end
        if added > 0 then
            redis.call('HSET', pkey, 'total', int(total))
            redis.call('HINCRBY', pkey, 'left', added)
        end
    end
    return reply
end
