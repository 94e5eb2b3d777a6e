-- Writes a job's verdict once, and only from its current attempt: the job must still be
-- pending with this consumer at this delivery count (a job claimed by another worker, or
-- already completed, is not). Then acknowledges the job and deletes it from the stream.
-- KEYS[1] the stream   KEYS[2] the verdict key
-- ARGV[1] the group   ARGV[2] the job's entry id   ARGV[3] the consumer   ARGV[4] the attempt
-- ARGV[5] the verdict (JSON)   ARGV[6] the verdict's time to live, ms
-- Returns 1 when the verdict was written, else 0.
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
local e = p[1]
if not e or e[2] ~= ARGV[3] or e[4] ~= tonumber(ARGV[4]) then
  return 0
end
local written = redis.call('SET', KEYS[2], ARGV[5], 'NX', 'PX', ARGV[6])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if written then
  return 1
end
return 0
