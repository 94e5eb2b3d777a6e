package main

import (
	"errors"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/bulbquiz/bulb/protocol"
	"github.com/bulbquiz/bulb/quiz"
)

// Why joins and look-ups of unknown rooms are limited per client address: joining needs
// nothing, so a script filled a room of 20,000 players in under a second (honest students
// then got "room is full"), and probed room codes at 28,000 a second, all six digits in
// half a minute. Each client address has a token bucket of joins and a stricter one of
// look-ups that found no room; past either, the server answers 429 rate_limited with a
// Retry-After header.

// Bounds of a per-address limiter map: a full bucket is as good as none, so such entries
// are swept out every sweepEvery (by the first new address after it: no goroutine); at
// most maxAddrs are kept (some 200 bytes each), and past that an arbitrary one makes room
// for a new one, so that a stranger with many addresses cannot grow the map without
// limit. Its bucket is forgotten: such a stranger has fresh buckets anyway.
const (
	sweepEvery = time.Minute
	maxAddrs   = 1 << 16
)

// addrLimits is a token bucket per client address; a nil *addrLimits is no limit.
type addrLimits struct {
	every rate.Limit // tokens a second
	burst int

	mu    sync.Mutex
	m     map[netip.Addr]*rate.Limiter
	swept time.Time
}

// newAddrLimits returns buckets of perMinute tokens, refilled at perMinute a minute; nil
// if perMinute is 0.
func newAddrLimits(perMinute int) *addrLimits {
	if perMinute == 0 {
		return nil
	}
	return &addrLimits{every: rate.Limit(float64(perMinute) / 60), burst: perMinute, m: map[netip.Addr]*rate.Limiter{}}
}

// bucket returns a's bucket, made full if a has none.
func (l *addrLimits) bucket(a netip.Addr, now time.Time) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.m[a]; b != nil {
		return b
	}
	if now.Sub(l.swept) >= sweepEvery {
		l.sweepLocked(now)
	}
	for old := range l.m { // Go's map order is random: an arbitrary address makes room
		if len(l.m) < maxAddrs {
			break
		}
		delete(l.m, old)
	}
	b := rate.NewLimiter(l.every, l.burst)
	l.m[a] = b
	return b
}

// sweepLocked drops the full buckets. l.mu is held.
func (l *addrLimits) sweepLocked(now time.Time) {
	l.swept = now
	for a, b := range l.m {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.m, a)
		}
	}
}

// size is the number of addresses with a bucket.
func (l *addrLimits) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// retryAfter is how long until b has a token again at now.
func retryAfter(b *rate.Limiter, now time.Time) time.Duration {
	missing := 1 - b.TokensAt(now)
	if missing <= 0 {
		return 0
	}
	return time.Duration(missing / float64(b.Limit()) * float64(time.Second))
}

// rateLimited sets Retry-After (whole seconds, at least 1) and returns the 429 error.
func rateLimited(c echo.Context, wait time.Duration, format string, args ...any) error {
	c.Response().Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
	return quiz.Errorf(protocol.RateLimited, format, args...)
}

// limits are the per-address rate limits of the API.
type limits struct {
	proxies proxies
	joins   *addrLimits // nil: no limit
	misses  *addrLimits // look-ups of unknown rooms; nil: no limit
	refused *prometheus.CounterVec
}

// newLimits returns the limits cfg sets, their metric not yet registered.
func newLimits(cfg config) *limits {
	return &limits{proxies: cfg.TrustedProxies, joins: newAddrLimits(cfg.JoinRate), misses: newAddrLimits(cfg.UnknownRoomRate),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulb_http_rate_limited_total", Help: "API calls refused with 429, by limit (join, unknown_room).",
		}, []string{"limit"})}
}

// limitJoins refuses a join past the client address's join rate, or once the address
// has used up its look-ups of unknown rooms (countUnknownRooms): a join is the one call
// that looks its room up before any token is checked (other calls answer 401 or 403
// first, whatever the room), so it is the one that could probe for rooms; refused, it
// gets 429 whether its room exists or not, and the answer tells nothing.
func (l *limits) limitJoins(next echo.HandlerFunc) echo.HandlerFunc {
	if l.joins == nil && l.misses == nil {
		return next
	}
	return func(c echo.Context) error {
		now := time.Now()
		client := l.proxies.client(c.Request())
		if l.misses != nil {
			if b := l.misses.bucket(client, now); b.TokensAt(now) < 1 {
				l.refused.WithLabelValues("unknown_room").Inc()
				return rateLimited(c, retryAfter(b, now), "too many look-ups of unknown rooms from your address: check the room code and try again shortly")
			}
		}
		if l.joins != nil {
			if b := l.joins.bucket(client, now); !b.AllowN(now, 1) {
				l.refused.WithLabelValues("join").Inc()
				return rateLimited(c, retryAfter(b, now), "more than %d joins a minute from your address: try again shortly", l.joins.burst)
			}
		}
		return next(c)
	}
}

// countUnknownRooms counts, per client address, the calls about a room that are answered
// 404: an unknown room, or question, or route under it. limitJoins refuses an address's
// joins once it has none left.
//
// Joins under way at once are all let through while the count lasts and all counted
// after: a burst can run the bucket into debt, which then takes longer to refill.
func (l *limits) countUnknownRooms(next echo.HandlerFunc) echo.HandlerFunc {
	if l.misses == nil {
		return next
	}
	return func(c echo.Context) error {
		err := next(c)
		if status, _ := errorStatus(err); err != nil && status == http.StatusNotFound {
			now := time.Now()
			l.misses.bucket(l.proxies.client(c.Request()), now).ReserveN(now, 1) // a debt if there was no token
		}
		return err
	}
}

// errorStatus is the HTTP status and error code of a handler's error.
func errorStatus(err error) (int, protocol.ErrorCode) {
	var he *echo.HTTPError
	code := quiz.ErrorCode(err)
	if errors.As(err, &he) {
		if code = codeOf[he.Code]; code == "" {
			code = protocol.Invalid
		}
	}
	status, ok := statusOf[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	return status, code
}
