-- Follows a worker's read of a job (XREADGROUP): lets the next job in round order into
-- the stream, for the next worker, and loads the job's test set, renewing its expiry.
-- KEYS[1] the stream
-- ARGV[1] the group   ARGV[2] the test set's name ('' for none)   ARGV[3] its lifetime, ms
-- Returns {1, test set} or {0, ''} when the test set is gone.
topup(ARGV[1])
if ARGV[2] == '' then
  return {0, ''}
end
local tests = redis.call('GETEX', key('tests:' .. ARGV[2]), 'PX', ARGV[3])
if not tests then
  return {0, ''}
end
return {1, tests}
