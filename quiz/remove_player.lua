-- Remove a player from a room, atomically: free its seat.
--
-- KEYS[1] room hash   KEYS[2] players hash   KEYS[3] names hash   KEYS[4] scores hash
-- KEYS[5] version     KEYS[6] the player's token key   KEYS[7] the room's last activity (µs)
-- KEYS[8...] the winners hash of each code question
-- ARGV[1] player ID   ARGV[2] the key of the player's name (quiz.foldName)   ARGV[3] now (µs)
--
-- Returns "ok", or why not (no_room, no_player) with nothing written. The player's
-- answers stay. In every code question's winners it is entered with rank 0, as if ranked:
-- a verdict on one of its submissions that comes later ranks nothing.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return 'no_room'
end
if (redis.call('HGET', KEYS[1], 'quizVersion') or '0') ~= ARGV[4] then
  return 'stale_quiz' -- KEYS[8...] were named from an older quiz
end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then
  return 'no_player'
end
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[3], ARGV[2]) == ARGV[1] then
  redis.call('HDEL', KEYS[3], ARGV[2])
else
  -- keyed by an older rule of folding names: look for the player's entry
  local names = redis.call('HGETALL', KEYS[3])
  for i = 1, #names, 2 do
    if names[i + 1] == ARGV[1] then
      redis.call('HDEL', KEYS[3], names[i])
    end
  end
end
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('DEL', KEYS[6])
for i = 8, #KEYS do
  if redis.call('HEXISTS', KEYS[i], ARGV[1]) == 0 then
    redis.call('HSET', KEYS[i], ARGV[1], 0)
  end
end
redis.call('INCR', KEYS[5])
if tonumber(redis.call('GET', KEYS[7]) or '0') < tonumber(ARGV[3]) then
  redis.call('SET', KEYS[7], ARGV[3])
end
return 'ok'
