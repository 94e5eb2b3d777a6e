package main

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bulbquiz/bulb/hub"
	"github.com/bulbquiz/bulb/protocol"
	"github.com/bulbquiz/bulb/quiz"
	"github.com/bulbquiz/bulb/web"
)

// defaultFairnessStarts is how many starts a fairness report lists unless asked.
const defaultFairnessStarts = 50

// Body limits.
const (
	maxQuizBody = 1 << 20
	maxBody     = 64 << 10
)

// server holds what the HTTP handlers need.
type server struct {
	svc        *quiz.Service
	hub        *hub.Hub
	health     func(context.Context) error
	adminToken string
	log        *slog.Logger
	answers    *prometheus.CounterVec
}

// newServer returns the echo router of a Bulb node.
func newServer(svc *quiz.Service, h *hub.Hub, health func(context.Context) error, adminToken string, lim *limits, reg *prometheus.Registry, log *slog.Logger) (*echo.Echo, error) {
	s := &server{svc: svc, hub: h, health: health, adminToken: adminToken, log: log.With("component", "server"),
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulb_answers_total", Help: "Answer frames by outcome: accepted or the error code.",
		}, []string{"outcome"}),
	}
	if err := reg.Register(s.answers); err != nil {
		return nil, err
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Pre(secureHeaders) // before routing: every answer, unknown routes too
	e.Use(s.recoverPanics)

	api := e.Group("/api", requestDeadline)
	api.POST("/rooms", s.createRoom)
	api.GET("/rooms", s.listRooms)
	room := api.Group("/rooms/:room", lim.countUnknownRooms) // every call about a room, unknown routes too
	room.GET("", s.getRoom)
	room.DELETE("", s.deleteRoom)
	room.POST("/finish", s.finish)
	room.GET("/results.csv", s.resultsCSV)
	room.GET("/results.json", s.resultsJSON)
	room.PUT("/quiz", s.editQuiz)
	room.POST("/players", s.join, lim.limitJoins)
	room.DELETE("/players/:player", s.removePlayer)
	room.POST("/lock", s.lock)
	room.POST("/questions/:n/open", s.open)
	room.POST("/questions/:n/start", s.start)
	room.POST("/questions/:n/close", s.close)
	room.GET("/questions/:n/answers", s.listAnswers)
	room.GET("/leaderboard", s.leaderboard)
	room.GET("/fairness", s.fairness)
	e.GET("/ws", s.websocket)
	e.GET("/healthz", s.healthz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))

	e.FileFS("/", "index.html", web.FS)
	e.FileFS("/host", "host.html", web.FS)
	e.FileFS("/admin", "admin.html", web.FS)
	e.FileFS("/present", "present.html", web.FS)
	e.GET("/static/*", echo.WrapHandler(http.StripPrefix("/static/", http.FileServerFS(web.FS))))
	return e, nil
}

// statusOf maps the domain's error codes to HTTP statuses.
var statusOf = map[protocol.ErrorCode]int{
	protocol.Invalid:         http.StatusBadRequest,
	protocol.Unauthorized:    http.StatusUnauthorized,
	protocol.Forbidden:       http.StatusForbidden,
	protocol.NotFound:        http.StatusNotFound,
	protocol.Conflict:        http.StatusConflict,
	protocol.TooLarge:        http.StatusRequestEntityTooLarge,
	protocol.NotStarted:      http.StatusConflict,
	protocol.Closed:          http.StatusConflict,
	protocol.AlreadyAnswered: http.StatusConflict,
	protocol.FalseStart:      http.StatusConflict,
	protocol.RateLimited:     http.StatusTooManyRequests,
	protocol.Busy:            http.StatusServiceUnavailable,
	protocol.Unavailable:     http.StatusServiceUnavailable,
	protocol.Internal:        http.StatusInternalServerError,
}

// codeOf maps echo's own HTTP errors (unknown route, wrong method) to domain codes.
var codeOf = map[int]protocol.ErrorCode{
	http.StatusNotFound:              protocol.NotFound,
	http.StatusMethodNotAllowed:      protocol.NotFound,
	http.StatusRequestEntityTooLarge: protocol.TooLarge,
	http.StatusUnauthorized:          protocol.Unauthorized,
}

// handleError writes err as {"error":{"code","message"}}. Internal errors are logged and
// shown only as "internal error".
func (s *server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, code := errorStatus(err)
	var he *echo.HTTPError
	if errors.As(err, &he) {
		err = quiz.Errorf(code, "%s", strings.ToLower(http.StatusText(he.Code)))
	}
	if code == protocol.Internal {
		s.log.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
	}
	body := protocol.ErrorBody{Error: protocol.ErrorDetail{Code: code, Message: quiz.ErrorMessage(err)}}
	if err := c.JSON(status, body); err != nil {
		s.log.Debug("writing error response", "err", err)
	}
}

// securityHeaders go on every answer, pages and API alike. The pages load their scripts
// and styles from files of their own (web/: no inline script or style, no event handler
// attribute, no eval) and talk to this server only, so the policy allows nothing else: a
// script or style injected into a page does not run, no plug-in loads, forms post here
// only, and no other site may frame a page to trick a click (frame-ancestors, and
// X-Frame-Options for older browsers). nosniff makes browsers take the content types as
// given; no-referrer keeps the pages' URLs (with a room code) from other sites.
var securityHeaders = [][2]string{
	{"Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
		"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"},
	{"X-Frame-Options", "DENY"},
	{"X-Content-Type-Options", "nosniff"},
	{"Referrer-Policy", "no-referrer"},
}

func secureHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		for _, kv := range securityHeaders {
			h.Set(kv[0], kv[1])
		}
		return next(c)
	}
}

// apiDeadline bounds an API call, so that a hung engine fails it rather than holding it.
const apiDeadline = 3 * time.Second

func requestDeadline(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), apiDeadline)
		defer cancel()
		c.SetRequest(c.Request().WithContext(ctx))
		return next(c)
	}
}

func (s *server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		return next(c)
	}
}

// decode reads a JSON body of at most limit bytes into v. An empty body leaves v as it is
// if allowEmpty.
func decode(c echo.Context, limit int64, v any, allowEmpty bool) error {
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, limit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return quiz.Errorf(protocol.TooLarge, "request body is over %d bytes", limit)
	}
	if err != nil {
		return quiz.Errorf(protocol.Invalid, "reading request body: %v", err)
	}
	if allowEmpty && len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields() // a misspelt field ("point") must not be dropped unsaid
	if err := dec.Decode(v); err != nil {
		return quiz.Errorf(protocol.Invalid, "malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 {
		return quiz.Errorf(protocol.Invalid, "malformed JSON: something after the value")
	}
	return nil
}

// bearer returns the request's bearer token.
func bearer(c echo.Context) string {
	h := c.Request().Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// identify returns who the request's token belongs to.
func (s *server) identify(c echo.Context) (quiz.Identity, error) {
	token := bearer(c)
	if token == "" {
		return quiz.Identity{}, quiz.Errorf(protocol.Unauthorized, "send Authorization: Bearer TOKEN")
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(s.adminToken)) == 1 {
		return quiz.Identity{Role: quiz.RoleAdmin}, nil
	}
	return s.svc.Identify(c.Request().Context(), token)
}

// authorize checks that the request's token has one of roles in the room named by the
// :code parameter; admin passes everywhere.
func (s *server) authorize(c echo.Context, roles ...quiz.Role) (quiz.Identity, error) {
	id, err := s.identify(c)
	if err != nil {
		return id, err
	}
	if id.Role == quiz.RoleAdmin {
		return id, nil
	}
	code := c.Param("room")
	for _, r := range roles {
		if id.Role == r && id.Room == code && code != "" {
			return id, nil
		}
	}
	return id, quiz.Errorf(protocol.Forbidden, "this token may not do that here")
}

// hostQuestion authorizes a host call about question :n and returns n.
func (s *server) hostQuestion(c echo.Context) (int, error) {
	if _, err := s.authorize(c, quiz.RoleHost); err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(c.Param("n"))
	if err != nil || n < 1 {
		return 0, quiz.Errorf(protocol.NotFound, "question %q not found: questions are numbered from 1", c.Param("n"))
	}
	return n, nil
}

type roomCreated struct {
	Code      string `json:"code"`
	HostToken string `json:"hostToken"`
}

func (s *server) createRoom(c echo.Context) error {
	if _, err := s.authorize(c); err != nil {
		return err
	}
	var qz quiz.Quiz
	if err := decode(c, maxQuizBody, &qz, false); err != nil {
		return err
	}
	r, err := s.svc.CreateRoom(c.Request().Context(), qz)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, roomCreated{Code: r.Code, HostToken: r.HostToken})
}

type roomSummary struct {
	Code      string     `json:"code"`
	Title     string     `json:"title"`
	Phase     quiz.Phase `json:"phase"`
	Current   int        `json:"current"`
	Players   int        `json:"players"`
	Questions int        `json:"questions"`
	CreatedAt time.Time  `json:"createdAt"`
}

func (s *server) listRooms(c echo.Context) error {
	if _, err := s.authorize(c); err != nil {
		return err
	}
	rooms, err := s.svc.Rooms(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]roomSummary, len(rooms))
	for i, r := range rooms {
		out[i] = roomSummary{Code: r.Code, Title: r.Quiz.Title, Phase: r.Phase, Current: r.Current,
			Players: len(r.Players), Questions: len(r.Quiz.Questions), CreatedAt: r.CreatedAt}
	}
	return c.JSON(http.StatusOK, map[string]any{"rooms": out})
}

type questionView struct {
	N int `json:"n"`
	quiz.Question
}

type playerView struct {
	quiz.Player
	Connected bool `json:"connected"`
}

type roomView struct {
	Code      string         `json:"code"`
	Title     string         `json:"title"`
	Ranking   string         `json:"ranking"`
	Timing    string         `json:"timing"`
	Winners   []int          `json:"winners,omitempty"`
	Current   int            `json:"current"`
	Phase     quiz.Phase     `json:"phase"`
	Locked    bool           `json:"locked"`
	StartAt   *time.Time     `json:"startAt,omitempty"`
	CloseAt   *time.Time     `json:"closeAt,omitempty"`
	Version   int64          `json:"version"`
	QuizVer   int64          `json:"quizVersion"`
	Manual    bool           `json:"manualClose,omitempty"`
	Presenter string         `json:"presenterToken"`
	Questions []questionView `json:"questions"`
	Players   []playerView   `json:"players"`
}

func (s *server) getRoom(c echo.Context) error {
	if _, err := s.authorize(c, quiz.RoleHost); err != nil {
		return err
	}
	r, err := s.svc.Room(c.Request().Context(), c.Param("room"))
	if err != nil {
		return err
	}
	v := roomView{Code: r.Code, Title: r.Quiz.Title, Ranking: r.Quiz.Ranking, Timing: r.Quiz.Timing,
		Winners: r.Quiz.Winners, Current: r.Current, Phase: r.Phase, Locked: r.Locked, Version: r.Version, QuizVer: r.Quiz.Version,
		Manual: r.Quiz.ManualClose, Presenter: quiz.PresenterToken(r.Code, r.HostToken),
		Questions: make([]questionView, len(r.Quiz.Questions)), Players: make([]playerView, len(r.Players))}
	if !r.StartAt.IsZero() {
		v.StartAt = &r.StartAt
	}
	if !r.CloseAt.IsZero() {
		v.CloseAt = &r.CloseAt
	}
	for i, q := range r.Quiz.Questions {
		v.Questions[i] = questionView{N: i + 1, Question: q}
	}
	online, err := s.hub.Online(c.Request().Context(), r.Code)
	if err != nil {
		return quiz.Errorf(protocol.Unavailable, "who is connected could not be read: %v", err)
	}
	for i, p := range r.Players {
		v.Players[i] = playerView{Player: p, Connected: online[p.ID]}
	}
	return c.JSON(http.StatusOK, v)
}

// editQuiz replaces a room's quiz: {"quizVersion":V,"quiz":{…}}, V being the version the
// host edited; a stale V gets 409.
func (s *server) editQuiz(c echo.Context) error {
	if _, err := s.authorize(c, quiz.RoleHost); err != nil {
		return err
	}
	var body struct {
		QuizVersion *int64     `json:"quizVersion"`
		Quiz        *quiz.Quiz `json:"quiz"`
	}
	if err := decode(c, maxQuizBody, &body, false); err != nil {
		return err
	}
	if body.QuizVersion == nil || body.Quiz == nil {
		return quiz.Errorf(protocol.Invalid, `send {"quizVersion": the version you edited, "quiz": the new quiz}`)
	}
	r, err := s.svc.EditQuiz(c.Request().Context(), c.Param("room"), *body.QuizVersion, *body.Quiz)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"quizVersion": r.Quiz.Version})
}

func (s *server) join(c echo.Context) error {
	var body struct {
		Name string `json:"name"`
	}
	if err := decode(c, maxBody, &body, false); err != nil {
		return err
	}
	p, err := s.svc.Join(c.Request().Context(), c.Param("room"), body.Name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]string{"playerId": p.ID, "token": p.Token})
}

// removePlayer frees a player's seat: the host (or admin) removes :player, or a player
// leaves, as "me" or by its own ID.
func (s *server) removePlayer(c echo.Context) error {
	id, err := s.authorize(c, quiz.RoleHost, quiz.RolePlayer)
	if err != nil {
		return err
	}
	playerID, byHost := c.Param("player"), id.Role != quiz.RolePlayer
	switch {
	case byHost && playerID == "me":
		return quiz.Errorf(protocol.Forbidden, "only a player leaves as me")
	case !byHost && playerID == "me":
		playerID = id.PlayerID
	case !byHost && playerID != id.PlayerID:
		return quiz.Errorf(protocol.Forbidden, "a player may remove only itself")
	}
	p, err := s.svc.Remove(c.Request().Context(), c.Param("room"), playerID, byHost)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"playerId": p.ID, "name": p.Name})
}

// lock locks or unlocks a room: {"locked":true|false}.
func (s *server) lock(c echo.Context) error {
	if _, err := s.authorize(c, quiz.RoleHost); err != nil {
		return err
	}
	var body struct {
		Locked *bool `json:"locked"`
	}
	if err := decode(c, maxBody, &body, false); err != nil {
		return err
	}
	if body.Locked == nil {
		return quiz.Errorf(protocol.Invalid, `send {"locked": true} or {"locked": false}`)
	}
	r, err := s.svc.Lock(c.Request().Context(), c.Param("room"), *body.Locked)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]bool{"locked": r.Locked})
}

func (s *server) open(c echo.Context) error {
	n, err := s.hostQuestion(c)
	if err != nil {
		return err
	}
	r, err := s.svc.Open(c.Request().Context(), c.Param("room"), n)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"n": n, "phase": r.Phase})
}

// scheduledAt reads the optional {"at":"RFC 3339"} body of a start or close.
func scheduledAt(c echo.Context) (time.Time, error) {
	var body struct {
		At string `json:"at"`
	}
	if err := decode(c, maxBody, &body, true); err != nil || body.At == "" {
		return time.Time{}, err
	}
	at, err := time.Parse(time.RFC3339Nano, body.At)
	if err != nil {
		return time.Time{}, quiz.Errorf(protocol.Invalid, "at must be an RFC 3339 time, like 2026-11-23T18:00:00Z")
	}
	return at, nil
}

// timed runs a start or close of question :n, now or at the body's time: act does it and
// returns the answer to a call for now; a timed one is answered 202 with its time.
func (s *server) timed(c echo.Context, act func(ctx context.Context, room string, n int, at time.Time) (any, error)) error {
	n, err := s.hostQuestion(c)
	if err != nil {
		return err
	}
	at, err := scheduledAt(c)
	if err != nil {
		return err
	}
	body, err := act(c.Request().Context(), c.Param("room"), n, at)
	if err != nil {
		return err
	}
	if !at.IsZero() {
		return c.JSON(http.StatusAccepted, map[string]any{"n": n, "at": at.UTC(), "scheduled": true})
	}
	return c.JSON(http.StatusOK, body)
}

func (s *server) start(c echo.Context) error {
	return s.timed(c, func(ctx context.Context, room string, n int, at time.Time) (any, error) {
		res, err := s.svc.Start(ctx, room, n, at)
		body := map[string]any{"seq": res.Seq, "recipients": res.Recipients}
		if !res.Reveal.IsZero() {
			body["revealAt"] = res.Reveal.UTC()
		}
		return body, err
	})
}

func (s *server) close(c echo.Context) error {
	return s.timed(c, func(ctx context.Context, room string, n int, at time.Time) (any, error) {
		r, err := s.svc.Close(ctx, room, n, at)
		if err != nil {
			return nil, err
		}
		return map[string]any{"n": n, "phase": r.Phase}, nil
	})
}

func (s *server) listAnswers(c echo.Context) error {
	n, err := s.hostQuestion(c)
	if err != nil {
		return err
	}
	answers, err := s.svc.Answers(c.Request().Context(), c.Param("room"), n)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"n": n, "answers": answers})
}

func (s *server) leaderboard(c echo.Context) error {
	if _, err := s.authorize(c, quiz.RoleHost, quiz.RolePlayer, quiz.RolePresenter); err != nil {
		return err
	}
	entries, err := s.svc.Leaderboard(c.Request().Context(), c.Param("room"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"entries": entries})
}

// finish ends the quiz: → 200 {"phase":"finished"}.
func (s *server) finish(c echo.Context) error {
	if _, err := s.authorize(c, quiz.RoleHost); err != nil {
		return err
	}
	r, err := s.svc.Finish(c.Request().Context(), c.Param("room"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"phase": r.Phase})
}

// deleteRoom deletes the room now, with its players, tokens and answers: → 200
// {"deleted":"482913"}.
func (s *server) deleteRoom(c echo.Context) error {
	if _, err := s.authorize(c, quiz.RoleHost); err != nil {
		return err
	}
	if err := s.svc.DeleteRoom(c.Request().Context(), c.Param("room")); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"deleted": c.Param("room")})
}

// healthz says whether this node can serve: 200 {"status":"ok"}, or 503 with the reason.
func (s *server) healthz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.health(ctx); err != nil {
		return c.JSON(http.StatusServiceUnavailable, struct {
			Status string `json:"status"`
			protocol.ErrorBody
		}{"unavailable", protocol.ErrorBody{Error: protocol.ErrorDetail{Code: protocol.Unavailable, Message: err.Error()}}})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *server) fairness(c echo.Context) error {
	if _, err := s.authorize(c, quiz.RoleHost); err != nil {
		return err
	}
	code := c.Param("room")
	if _, err := s.svc.Room(c.Request().Context(), code); err != nil {
		return err
	}
	limit := defaultFairnessStarts
	if v := c.QueryParam("limit"); v != "" {
		var err error
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
			return quiz.Errorf(protocol.Invalid, "limit must be a positive whole number")
		}
	}
	rep, err := s.hub.ClusterFairness(c.Request().Context(), code, limit)
	if err != nil {
		return quiz.Errorf(protocol.Unavailable, "the other nodes' fairness records could not be read: %v", err)
	}
	if err := s.countFalseStarts(c.Request().Context(), code, &rep); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rep)
}

// countFalseStarts fills in each synced start's false starts (the answers to its question
// refused as faster than anyone reacts) and each player's, over the questions started.
func (s *server) countFalseStarts(ctx context.Context, room string, rep *hub.Report) error {
	perQuestion, perPlayer := map[int]int{}, map[string]int{}
	for _, st := range rep.Starts {
		if st.Reveal == nil {
			continue
		}
		if _, done := perQuestion[st.N]; !done {
			answers, err := s.svc.Answers(ctx, room, st.N)
			if err != nil {
				return err
			}
			perQuestion[st.N] = 0
			for _, a := range answers {
				if a.FalseStart {
					perQuestion[st.N]++
					perPlayer[a.PlayerID]++
				}
			}
		}
		st.Reveal.FalseStarts = perQuestion[st.N]
	}
	for i := range rep.Bias {
		rep.Bias[i].FalseStarts = perPlayer[rep.Bias[i].PlayerID]
	}
	return nil
}
