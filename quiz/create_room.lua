-- Create a room, atomically.
--
-- KEYS[1] room hash   KEYS[2] version   KEYS[3] the host token key   KEYS[4] rooms index
-- KEYS[5] the room's last activity (µs)   KEYS[6] the mark of an expired room of this code
-- ARGV[1] the room's activity, µs (also its score in the index)   ARGV[2] room code
-- ARGV[3] host identity JSON   ARGV[4] version   ARGV[5...] the room hash's fields and values
--
-- Returns 1, or 0 if the code is taken, or was a room's that expired a short while ago
-- (nothing written).

if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[6]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('SET', KEYS[2], ARGV[4])
redis.call('SET', KEYS[3], ARGV[3])
redis.call('SET', KEYS[5], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[1], ARGV[2])
return 1
