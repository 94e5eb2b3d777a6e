-- Returns a box from a worker's held list to the free list, if the worker holds it.
-- KEYS[1] the held list   KEYS[2] the free list   ARGV[1] the box id
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  return 1
end
return 0
