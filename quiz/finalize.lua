-- Finalize a deferred question once, atomically.
--
-- KEYS[1] room hash   KEYS[2] final flag   KEYS[3] answers list   KEYS[4] scores hash
-- KEYS[5] players hash
-- ARGV[1] how many answers the caller read; then, per ranked answer, four values:
-- its 0-based index in the answers list, its new record, its player ID and its points.
--
-- Returns "ok", "done" if the question was finalized before (nothing changes), or
-- "no_room" / "changed" (the list is shorter than the caller read) with nothing written.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return 'no_room'
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 'done'
end
-- Check before writing: a script that fails halfway keeps its first writes.
if redis.call('LLEN', KEYS[3]) < tonumber(ARGV[1]) then
  return 'changed'
end
redis.call('SET', KEYS[2], '1')
for i = 2, #ARGV, 4 do
  redis.call('LSET', KEYS[3], ARGV[i], ARGV[i + 1])
  local points = tonumber(ARGV[i + 3])
  if points ~= 0 and redis.call('HEXISTS', KEYS[5], ARGV[i + 2]) == 1 then -- not a player removed since
    redis.call('HINCRBY', KEYS[4], ARGV[i + 2], points)
  end
end
return 'ok'
