-- Remove delivered outbox entries: ARGV is job id, entry, ...; an entry that
-- changed since (a newer event was appended) stays, to be delivered again.
for i = 1, #ARGV, 2 do
    if redis.call('HGET', OUTBOX, ARGV[i]) == ARGV[i + 1] then redis.call('HDEL', OUTBOX, ARGV[i]) end
end
return 0
