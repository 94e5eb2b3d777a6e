-- Add a player to a room, atomically.
--
-- KEYS[1] room hash   KEYS[2] players hash   KEYS[3] names hash   KEYS[4] scores hash
-- KEYS[5] version     KEYS[6] the player's token key   KEYS[7] joins counter
-- KEYS[8] the room's last activity (µs)
-- ARGV[1] player ID   ARGV[2] the name's key (quiz.foldName)   ARGV[3] player JSON (an object)
-- ARGV[4] identity JSON   ARGV[5] the most players a room takes   ARGV[6] now (µs)
--
-- Returns "ok", or why not (no_room, locked, full, name_taken, id_taken) with nothing
-- written. The player's record gets "seq", its place in join order, first: the joins
-- counter, not the number of players, which falls when a player is removed.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return 'no_room'
end
if redis.call('HGET', KEYS[1], 'locked') == '1' then
  return 'locked'
end
local count = redis.call('HLEN', KEYS[2])
if count >= tonumber(ARGV[5]) then
  return 'full'
end
if redis.call('HEXISTS', KEYS[3], ARGV[2]) == 1 then
  return 'name_taken'
end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  return 'id_taken'
end
if redis.call('EXISTS', KEYS[7]) == 0 then
  redis.call('SET', KEYS[7], count) -- a room from before players could be removed
end
local seq = redis.call('INCR', KEYS[7])
redis.call('HSET', KEYS[2], ARGV[1], '{"seq":' .. string.format('%d', seq) .. ',' .. string.sub(ARGV[3], 2))
redis.call('HSET', KEYS[3], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], 0)
redis.call('SET', KEYS[6], ARGV[4])
redis.call('INCR', KEYS[5])
if tonumber(redis.call('GET', KEYS[8]) or '0') < tonumber(ARGV[6]) then
  redis.call('SET', KEYS[8], ARGV[6])
end
return 'ok'
