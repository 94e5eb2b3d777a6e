-- Drops a player's jobs that no worker has read: those waiting in its list, and one in
-- the stream not yet read (deleted from the stream: the group never delivers it). The
-- player leaves its room's rounds, and the room the rounds of rooms if nothing of it
-- waits any more; a dropped job in the stream makes room there for the next.
-- KEYS[1] the stream
-- ARGV[1] the group   ARGV[2] the room   ARGV[3] the player
-- Returns how many jobs were dropped.
local group, room, player = ARGV[1], ARGV[2], ARGV[3]
local wait = roomKey(room, 'wait:' .. player)
local n = redis.call('LLEN', wait) / 3
if n > 0 then
  redis.call('DEL', wait)
  redis.call('DECRBY', key('waiting'), n)
  local cur, nxt = roomKey(room, 'cur'), roomKey(room, 'next')
  redis.call('LREM', cur, 0, player)
  redis.call('LREM', nxt, 0, player)
  if redis.call('EXISTS', cur) == 0 and redis.call('EXISTS', nxt) == 0 then
    redis.call('LREM', key('rooms:cur'), 0, room)
    redis.call('LREM', key('rooms:next'), 0, room)
  end
end
for _, e in ipairs(unread(group, 100)) do
  if field(e[2], 'room') == room and field(e[2], 'player') == player then
    redis.call('XDEL', stream, e[1])
    n = n + 1
  end
end
if n > 0 then
  finish(room, n)
  topup(group)
end
return n
