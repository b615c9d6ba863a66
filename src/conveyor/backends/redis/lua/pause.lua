-- Stop handing out jobs of this queue (its jobs stay where they are).
redis.call('SET', B .. ':paused', '1')
return 0
