-- Adds a job to the stream unless ARGV[1] jobs already wait there (finished jobs are
-- deleted from it, so its length is the backlog).
-- KEYS[1] the stream   ARGV[1] the most jobs   ARGV[2] the job (JSON)
-- Returns {1, id} when added, {0, length} when full.
local n = redis.call('XLEN', KEYS[1])
if n >= tonumber(ARGV[1]) then
  return {0, n}
end
return {1, redis.call('XADD', KEYS[1], '*', 'job', ARGV[2])}
