-- Completes a job, only from its current attempt: the job must still be pending with this
-- consumer at this delivery count (a job claimed by another worker, or already completed,
-- is not). Then acknowledges the job, deletes it from the stream and counts it out of its
-- room's unfinished jobs (the room named in the entry).
-- KEYS[1] the stream
-- ARGV[1] the group   ARGV[2] the job's entry id   ARGV[3] the consumer   ARGV[4] the attempt
-- Returns 1 when the job was completed, else 0 (nothing changed).
local p = redis.call('XPENDING', stream, ARGV[1], ARGV[2], ARGV[2], 1)
local e = p[1]
if not e or e[2] ~= ARGV[3] or e[4] ~= tonumber(ARGV[4]) then
  return 0
end
local entry = redis.call('XRANGE', stream, ARGV[2], ARGV[2])[1]
redis.call('XACK', stream, ARGV[1], ARGV[2])
redis.call('XDEL', stream, ARGV[2])
local room = entry and field(entry[2], 'room')
if room then
  finish(room, 1)
end
return 1
