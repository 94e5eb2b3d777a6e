-- Accept one judged answer, atomically (award.lua is prepended: it defines award).
--
-- KEYS[1] room hash      KEYS[2] players hash   KEYS[3] scores hash
-- KEYS[4] answers list   KEYS[5] answered hash  KEYS[6] correct counter   (of question n)
-- KEYS[7] solved hash (of a code question n: player ID → 1 once a submission is accepted)
-- KEYS[8] the room's last activity (µs)
-- ARGV[1] n   ARGV[2] player ID   ARGV[3] "1" if the answer is correct
-- ARGV[4] the answer's head: a JSON object with the fields the caller knows
-- ARGV[5] the scoring rule, JSON (see award.lua)
-- ARGV[6] the version of the quiz the answer was marked by
-- ARGV[7] the response's key: the same answer sent again has the same key
-- ARGV[8] "1" for a code submission   ARGV[9] the most code submissions of a player
-- ARGV[10] now, by the store's clock (µs): the room's activity
-- ARGV[11] under the synced reveal, when the answer arrived (µs, the node's clock); else ""
--
-- A code submission is one of many: the answered hash counts a player's submissions, and
-- the submission is stored pending, with no rank, for the verdict to settle (store_redis.go).
--
-- Returns {status, record}. status is "ok", and record the stored answer: the head with
-- name, rank, arrivalRank, points, pending, receivedUs and elapsedUs added; or "replay"
-- and the record stored before, when the player sends the very same answer again (a
-- retry after a lost reply changes nothing and learns the outcome). Otherwise status
-- is why the answer is refused (no_room, stale_quiz, not_started, not_lit, closed, already_answered,
-- no_player, solved, too_many) and nothing was written.

local room = redis.call('HMGET', KEYS[1], 'current', 'phase', 'startedAt', 'quizVersion')
local current, phase, started = tonumber(room[1]), room[2], room[3]
if not phase then
  return {'no_room', ''}
end
if (room[4] or '0') ~= ARGV[6] then
  return {'stale_quiz', ''}
end

-- Whether question n takes answers now: this check, atomic with the insert below, is the
-- authority on the Redis engine, as checkAcceptable and Accept are on the memory engine
-- (store_memory.go): the phase, and under the synced reveal the reveal instant.
local n = tonumber(ARGV[1])
if n > current or (n == current and (phase == 'open' or phase == 'lobby')) then
  return {'not_started', ''}
end
if n < current or phase ~= 'live' then
  return {'closed', ''}
end
-- Under the synced reveal an answer counts from the question's reveal instant (startedAt).
if ARGV[11] ~= '' and started and started ~= '' and tonumber(ARGV[11]) < tonumber(started) then
  return {'not_lit', ''}
end

local player = ARGV[2]
local code = ARGV[8] == '1'
local prior = redis.call('HGET', KEYS[5], player) -- "arrival key", or a code submission count
if code then
  if redis.call('HEXISTS', KEYS[7], player) == 1 then
    return {'solved', ''}
  end
  if tonumber(prior or '0') >= tonumber(ARGV[9]) then
    return {'too_many', ''}
  end
elseif prior then
  local sp = string.find(prior, ' ', 1, true)
  if sp and string.sub(prior, sp + 1) == ARGV[7] then
    return {'replay', redis.call('LINDEX', KEYS[4], tonumber(string.sub(prior, 1, sp - 1)) - 1)}
  end
  return {'already_answered', ''}
end
local pjson = redis.call('HGET', KEYS[2], player)
if not pjson then
  return {'no_player', ''}
end

-- One clock for every node: the Redis server's.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2]) -- µs, exact in a double until 2255
local elapsed = 0
if started and started ~= '' then
  elapsed = math.max(now - tonumber(started), 0)
end

local sc = cjson.decode(ARGV[5])
local arrival = redis.call('LLEN', KEYS[4]) + 1
local rank, points, pending = 0, 0, 'false'
if code then
  pending = 'true'
elseif ARGV[3] == '1' then
  if sc.deferred then
    pending = 'true'
  else
    rank = redis.call('INCR', KEYS[6])
    points = award(sc, rank, elapsed)
    if points ~= 0 then
      redis.call('HINCRBY', KEYS[3], player, points)
    end
  end
end

-- Numbers are formatted by hand: Lua's tostring keeps only 14 significant digits.
local record = string.sub(ARGV[4], 1, -2) ..
  ',"name":' .. cjson.encode(cjson.decode(pjson).name) ..
  ',"rank":' .. string.format('%d', rank) ..
  ',"arrivalRank":' .. string.format('%d', arrival) ..
  ',"points":' .. string.format('%d', points) ..
  ',"pending":' .. pending ..
  ',"receivedUs":' .. t[1] .. string.format('%06d', tonumber(t[2])) ..
  ',"elapsedUs":' .. string.format('%.0f', elapsed) .. '}'
redis.call('RPUSH', KEYS[4], record)
if code then
  redis.call('HINCRBY', KEYS[5], player, 1)
else
  redis.call('HSET', KEYS[5], player, string.format('%d', arrival) .. ' ' .. ARGV[7])
end
if tonumber(redis.call('GET', KEYS[8]) or '0') < tonumber(ARGV[10]) then
  redis.call('SET', KEYS[8], ARGV[10])
end
return {'ok', record}
