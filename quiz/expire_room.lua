-- Expire a room if it has been quiet since a given instant, atomically: delete its keys,
-- its players' and host's tokens and its entry in the rooms index.
--
-- KEYS[1] rooms index   KEYS[2] room hash   KEYS[3] the room's last activity (µs)
-- KEYS[4] players hash  KEYS[5] the mark of an expired room of this code
-- KEYS[6...] the room's other keys, of the room and of each of its possible questions
-- ARGV[1] room code   ARGV[2] before (µs)   ARGV[3] now (µs)
-- ARGV[4] the token keys' prefix, up to the token   ARGV[5] how long the mark lasts (s)
--
-- Returns 1 if the room was deleted (or only its index entry was left), 0 if it is kept:
-- then its index score is set to its activity, so that it is looked at again only once
-- that is old. The token keys are named here, from the tokens in the room: like
-- add_player.lua's, they lie outside the room's slot (one Redis server, not a Cluster).

local active = redis.call('GET', KEYS[3])
local exists = redis.call('EXISTS', KEYS[2]) == 1
if exists and not active then
  -- a room from before activity was kept: active from now on
  redis.call('SET', KEYS[3], ARGV[3])
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 0
end
if exists and tonumber(active) >= tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], active, ARGV[1])
  return 0
end

local del = {}
local host = redis.call('HGET', KEYS[2], 'hostToken')
if host then
  del[#del + 1] = ARGV[4] .. host .. '}'
end
for _, p in ipairs(redis.call('HVALS', KEYS[4])) do
  local token = cjson.decode(p).token
  if token then
    del[#del + 1] = ARGV[4] .. token .. '}'
  end
end
for i = 1, #KEYS do
  if i ~= 1 and i ~= 5 then
    del[#del + 1] = KEYS[i]
  end
end
for i = 1, #del, 500 do -- unpack has a limit
  redis.call('DEL', unpack(del, i, math.min(i + 499, #del)))
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('SET', KEYS[5], '1', 'EX', ARGV[5])
return 1
