-- The judge jobs' shared part, put before each of their scripts (jobs_*.lua).
--
-- KEYS[1] is the stream. Every other key of the jobs is KEYS[1] .. ':' .. a suffix (see
-- docs/redis.md): a room's and a player's keys are only known inside the scripts, and
-- the {jobs} hash tag of KEYS[1] keeps them all in its slot.
--
-- The stream holds the jobs handed to workers, and at most one job not yet read (see
-- topup); the others wait in lists, one per player, ordered by rounds on two levels, as
-- Queue orders them in Go (queue.go): rooms take turns, and in a room's turn its players
-- take turns.
local stream = KEYS[1]

local function key(suffix)
  return stream .. ':' .. suffix
end

local function roomKey(room, suffix)
  return stream .. ':room:' .. room .. ':' .. suffix
end

-- A field of a stream entry's flat field list, or nil.
local function field(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then
      return fields[i + 1]
    end
  end
  return nil
end

-- Places a flow (a room, or a player of a room) that had nothing waiting and now has: in
-- the current round (list cur), unless it had its turn in it already (set served): then
-- in the next (list nxt).
local function join(cur, nxt, served, flow)
  if redis.call('SISMEMBER', served, flow) == 1 then
    redis.call('RPUSH', nxt, flow)
  else
    redis.call('RPUSH', cur, flow)
  end
end

-- Returns the flow whose turn it is, marked served, starting the next round if the
-- current one is over; false if no flow waits. The caller puts it in the next round
-- while it still has something waiting.
local function take(cur, nxt, served)
  if redis.call('EXISTS', cur) == 0 then
    if redis.call('EXISTS', nxt) == 0 then
      return false
    end
    redis.call('RENAME', nxt, cur)
    redis.call('DEL', served)
  end
  local flow = redis.call('LPOP', cur)
  redis.call('SADD', served, flow)
  return flow
end

-- Moves the next waiting job, in round order, into the stream. Returns its entry id, or
-- false when no job waits. A room or player in the rounds without a job (keys deleted
-- by hand) is skipped.
local function release()
  for _ = 1, 100 do
    local room = take(key('rooms:cur'), key('rooms:next'), key('rooms:served'))
    if not room then
      return false
    end
    local cur, nxt = roomKey(room, 'cur'), roomKey(room, 'next')
    local player = take(cur, nxt, roomKey(room, 'served'))
    if player then
      local wait = roomKey(room, 'wait:' .. player)
      local job = redis.call('LPOP', wait, 3) -- id, tests, job
      if redis.call('EXISTS', wait) == 1 then
        redis.call('RPUSH', nxt, player)
      end
      if redis.call('EXISTS', cur) == 1 or redis.call('EXISTS', nxt) == 1 then
        redis.call('RPUSH', key('rooms:next'), room)
      end
      if job then
        redis.call('DECR', key('waiting'))
        return redis.call('XADD', stream, '*', 'id', job[1], 'room', room, 'player', player,
          'tests', job[2], 'job', job[3])
      end
    end
  end
  return false
end

-- The entries of the stream that group has not read yet, at most count: all of them
-- when the group does not exist (it reads from the start when made).
local function unread(group, count)
  if redis.call('EXISTS', stream) == 0 then
    return {}
  end
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    if field(g, 'name') == group then
      return redis.call('XRANGE', stream, '(' .. field(g, 'last-delivered-id'), '+', 'COUNT', count)
    end
  end
  return redis.call('XRANGE', stream, '-', '+', 'COUNT', count)
end

-- Releases the next waiting job into the stream unless a job there waits to be read
-- already: at most one job is in the stream before its turn, so a job that arrives later
-- but comes first in round order passes all the others.
local function topup(group)
  if #unread(group, 1) == 0 then
    release()
  end
end

-- Counts n of room's jobs as finished (completed, or dropped); with none left unfinished
-- the room's rounds of players are forgotten.
local function finish(room, n)
  if redis.call('HINCRBY', key('unfinished'), room, -n) <= 0 then
    redis.call('HDEL', key('unfinished'), room)
    redis.call('DEL', roomKey(room, 'served'))
  end
end
