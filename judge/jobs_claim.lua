-- Claims for a consumer one job that has sat pending with another (dead) consumer for
-- longer than the idle time, and returns it with its attempt: its delivery count, which
-- the claim raised by one, and its test set. First lets the next waiting job into the
-- stream if none waits there (as jobs_taken.lua does): Next calls this script every
-- second or so, so a read whose jobs_taken.lua never ran (its worker died) stalls nothing.
-- KEYS[1] the stream
-- ARGV[1] the group   ARGV[2] the consumer   ARGV[3] the idle time, ms
-- ARGV[4] the test sets' lifetime, ms
-- Returns {id, fields, attempt, deleted, found, test set}: id is '' when nothing was
-- claimed; deleted lists pending ids whose entries were gone from the stream (XAUTOCLAIM
-- dropped them); found is 1 when the test set was loaded.
topup(ARGV[1])
local cursor = '0-0'
local deleted = {}
-- XAUTOCLAIM COUNT 1 looks at up to 10 pending entries a call: go on from its cursor, but
-- at most 100 calls (1000 jobs in progress) in one script.
for _ = 1, 100 do
  local r = redis.call('XAUTOCLAIM', stream, ARGV[1], ARGV[2], ARGV[3], cursor, 'COUNT', 1)
  cursor = r[1]
  for _, id in ipairs(r[3] or {}) do
    deleted[#deleted + 1] = id
  end
  local e = r[2][1]
  if e then
    local p = redis.call('XPENDING', stream, ARGV[1], e[1], e[1], 1)
    local ref = field(e[2], 'tests')
    local tests = ref and redis.call('GETEX', key('tests:' .. ref), 'PX', ARGV[4])
    if tests then
      return {e[1], e[2], p[1][4], deleted, 1, tests}
    end
    return {e[1], e[2], p[1][4], deleted, 0, ''}
  end
  if cursor == '0-0' then
    break
  end
end
return {'', {}, 0, deleted, 0, ''}
