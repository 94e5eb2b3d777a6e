-- Extends a lease if it is still ours: compare-and-pexpire.
-- KEYS[1] the lease; ARGV[1] our token; ARGV[2] the new TTL in ms. Returns 1 or 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
