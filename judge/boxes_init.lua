-- Fills a host's free boxes once: ids ARGV[2] to ARGV[2]+ARGV[1]-1.
-- KEYS[1] the init flag   KEYS[2] the free list
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  local first = tonumber(ARGV[2])
  for id = first, first + tonumber(ARGV[1]) - 1 do
    redis.call('RPUSH', KEYS[2], id)
  end
  return 1
end
return 0
