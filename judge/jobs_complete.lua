-- Writes a job's verdict once, and only from its current attempt: the job must still be
-- pending with this consumer at this delivery count (a job claimed by another worker, or
-- already completed, is not). Then acknowledges the job, deletes it from the stream, and
-- lets the player's next waiting job (jobs_enqueue.lua) into the stream.
-- KEYS[1] the stream   KEYS[2] the verdict key   KEYS[3] the in-stream hash
-- KEYS[4] the waiting counter   KEYS[5] the player's waiting list
-- ARGV[1] the group   ARGV[2] the job's entry id   ARGV[3] the consumer   ARGV[4] the attempt
-- ARGV[5] the verdict (JSON)   ARGV[6] the verdict's time to live, ms   ARGV[7] the player
-- Returns 1 when the verdict was written, else 0.
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
local e = p[1]
if not e or e[2] ~= ARGV[3] or e[4] ~= tonumber(ARGV[4]) then
  return 0
end
local written = redis.call('SET', KEYS[2], ARGV[5], 'NX', 'PX', ARGV[6])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if redis.call('HGET', KEYS[3], ARGV[7]) == ARGV[2] then
  local nxt = redis.call('LPOP', KEYS[5], 2)
  if nxt then
    redis.call('DECR', KEYS[4])
    local id = redis.call('XADD', KEYS[1], '*', 'id', nxt[1], 'player', ARGV[7], 'job', nxt[2])
    redis.call('HSET', KEYS[3], ARGV[7], id)
  else
    redis.call('HDEL', KEYS[3], ARGV[7])
  end
end
if written then
  return 1
end
return 0
