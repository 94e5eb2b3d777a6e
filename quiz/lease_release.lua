-- Releases a lease if it is still ours: compare-and-delete.
-- KEYS[1] the lease; ARGV[1] our token. Returns 1 if deleted, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
