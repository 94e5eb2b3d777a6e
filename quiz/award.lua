-- award returns the points of a correct answer of the given rank (1-based) that came
-- elapsed_us microseconds after the start, by the scoring rule sc (the JSON of
-- redisScoring: speed, winners, points, timeLimitNs). It must equal Go's Scoring.Award
-- exactly: store_redis_test.go checks both over a table. Lua numbers are doubles, like
-- Go's float64, and every operation below is done in the same order as in Go.
local function award(sc, rank, elapsed_us)
  if not sc.speed then
    local w = sc.winners
    if type(w) == 'table' and rank >= 1 and rank <= #w then
      return w[rank]
    end
    return 0
  end
  local t = elapsed_us * 1000 -- nanoseconds, as Go's time.Duration
  if t < 500000000 then -- fullPointsWithin
    return sc.points
  end
  local frac = math.min(t / sc.timeLimitNs, 1)
  local x = sc.points * (1 - frac / 2)
  -- Go's math.Round rounds half away from zero; x is never negative here, and x - floor(x)
  -- is exact for doubles, so this is the same rounding (floor(x + 0.5) is not, near .5).
  local r = math.floor(x)
  if x - r >= 0.5 then
    r = r + 1
  end
  return r
end
