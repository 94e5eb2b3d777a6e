-- Adds a job for the workers, fairly across players: a player has at most one job in the
-- stream; its others wait in its own list, and the next of them enters the stream, at its
-- end, when the one before is completed (jobs_complete.lua). So a player's burst waits
-- behind every other player's next job, including one that comes later.
-- KEYS[1] the stream   KEYS[2] the in-stream hash (player → entry id)
-- KEYS[3] the waiting counter   KEYS[4] the player's waiting list (id, job pairs)
-- ARGV[1] the most unfinished jobs   ARGV[2] the job's id   ARGV[3] the player
-- ARGV[4] the job (JSON)
-- Returns {1, entry id} when the job entered the stream, {2, position} when it waits
-- behind the player's own jobs, {0, unfinished jobs} when full (nothing was added).
local unfinished = redis.call('XLEN', KEYS[1]) + tonumber(redis.call('GET', KEYS[3]) or '0')
if unfinished >= tonumber(ARGV[1]) then
  return {0, unfinished}
end
if redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1 then
  redis.call('INCR', KEYS[3])
  return {2, redis.call('RPUSH', KEYS[4], ARGV[2], ARGV[4]) / 2}
end
local id = redis.call('XADD', KEYS[1], '*', 'id', ARGV[2], 'player', ARGV[3], 'job', ARGV[4])
redis.call('HSET', KEYS[2], ARGV[3], id)
return {1, id}
