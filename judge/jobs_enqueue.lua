-- Adds a job, unless the jobs are full or its room has its quota of unfinished jobs: it
-- waits in its player's list, its player joins the room's rounds and the room the rounds
-- of rooms if they had nothing waiting, and the next job in round order enters the stream
-- if none waits there to be read. The test set is stored once, under its name, and its
-- expiry renewed.
-- KEYS[1] the stream
-- ARGV[1] the group   ARGV[2] the most unfinished jobs   ARGV[3] the most of one room
-- ARGV[4] the room   ARGV[5] the player   ARGV[6] the job's id   ARGV[7] the test set's name
-- ARGV[8] the job without its tests (JSON)   ARGV[9] the test set's lifetime, ms
-- ARGV[10] the test set (JSON), optional
-- Returns {'ok', the room's unfinished jobs}; {'full', unfinished jobs} or {'room', the
-- room's unfinished jobs} when nothing was added; {'tests', 0} when the test set is not
-- stored and ARGV[10] is missing: nothing was added, call again with it.
local group, room, player = ARGV[1], ARGV[4], ARGV[5]
local unfinished = redis.call('XLEN', stream) + tonumber(redis.call('GET', key('waiting')) or '0')
if unfinished >= tonumber(ARGV[2]) then
  return {'full', unfinished}
end
local inRoom = tonumber(redis.call('HGET', key('unfinished'), room) or '0')
if inRoom >= tonumber(ARGV[3]) then
  return {'room', inRoom}
end
local tests = key('tests:' .. ARGV[7])
if redis.call('PEXPIRE', tests, ARGV[9]) == 0 then
  if not ARGV[10] then
    return {'tests', 0}
  end
  redis.call('SET', tests, ARGV[10], 'PX', ARGV[9])
end
local cur, nxt = roomKey(room, 'cur'), roomKey(room, 'next')
if redis.call('RPUSH', roomKey(room, 'wait:' .. player), ARGV[6], ARGV[7], ARGV[8]) == 3 then
  if redis.call('EXISTS', cur) == 0 and redis.call('EXISTS', nxt) == 0 then
    join(key('rooms:cur'), key('rooms:next'), key('rooms:served'), room)
  end
  join(cur, nxt, roomKey(room, 'served'), player)
end
redis.call('INCR', key('waiting'))
inRoom = redis.call('HINCRBY', key('unfinished'), room, 1)
topup(group)
return {'ok', inRoom}
