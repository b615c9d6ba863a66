-- Hand out jobs of this queue again and wake idle workers. ARGV[1] channel, ARGV[2] queue.
if redis.call('DEL', B .. ':paused') == 1 then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return 0
