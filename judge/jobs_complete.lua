-- Completes a job, only from its current attempt: the job must still be pending with this
-- consumer at this delivery count (a job claimed by another worker, or already completed,
-- is not). Then acknowledges the job, deletes it from the stream, and lets the player's
-- next waiting job (jobs_enqueue.lua) into the stream.
-- KEYS[1] the stream   KEYS[2] the in-stream hash   KEYS[3] the waiting counter
-- KEYS[4] the player's waiting list
-- ARGV[1] the group   ARGV[2] the job's entry id   ARGV[3] the consumer   ARGV[4] the attempt
-- ARGV[5] the player
-- Returns 1 when the job was completed, else 0 (nothing changed).
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
local e = p[1]
if not e or e[2] ~= ARGV[3] or e[4] ~= tonumber(ARGV[4]) then
  return 0
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if redis.call('HGET', KEYS[2], ARGV[5]) == ARGV[2] then
  local nxt = redis.call('LPOP', KEYS[4], 2)
  if nxt then
    redis.call('DECR', KEYS[3])
    local id = redis.call('XADD', KEYS[1], '*', 'id', nxt[1], 'player', ARGV[5], 'job', nxt[2])
    redis.call('HSET', KEYS[2], ARGV[5], id)
  else
    redis.call('HDEL', KEYS[2], ARGV[5])
  end
end
return 1
