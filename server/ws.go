package main

import (
	"context"
	"encoding/json"
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"

	"github.com/bulbquiz/bulb/hub"
	"github.com/bulbquiz/bulb/quiz"
)

// websocket upgrades GET /ws?token=T and hands the connection to the hub, which serves it
// until it closes. The token is checked before the upgrade, so a bad one gets an ordinary
// JSON error.
func (s *server) websocket(c echo.Context) error {
	id, err := s.svc.Identify(c.Request().Context(), c.QueryParam("token"))
	if err != nil {
		return err
	}
	ws, err := hub.Accept(c.Response(), c.Request(), &websocket.AcceptOptions{
		CompressionMode: websocket.CompressionDisabled, // one frame to many: compression only adds latency
	})
	if err != nil {
		return nil // Accept has written the HTTP error
	}
	client := hub.Client{Room: id.Room, ID: id.PlayerID, Name: id.Name, Role: hub.Player}
	if id.Role == quiz.RoleHost {
		client.Role = hub.Host
	}
	sess := &session{srv: s, id: id}
	// The hub serves the connection on its own goroutines; returning frees the request.
	if err := s.hub.Attach(c.Request().Context(), ws, client, sess); err != nil {
		s.log.Debug("connection refused", "room", id.Room, "player", id.PlayerID, "err", err)
	}
	return nil
}

// Answer frames a player may send in answerWindow.
const (
	answerBurst  = 5
	answerWindow = time.Second
)

// session is one connection's frame handler. Its methods run on the connection's reader
// goroutine only, so its fields need no lock.
type session struct {
	srv     *server
	id      quiz.Identity
	answers [answerBurst]time.Time // the latest answer frames, a ring
	next    int
}

// Open sends the welcome frame.
func (ss *session) Open(ctx context.Context, c *hub.Conn) {
	frame, err := ss.srv.svc.Welcome(ctx, ss.id)
	if err != nil {
		c.Send(quiz.ErrorFrame(err, 0))
		return
	}
	c.Send(frame)
}

// frame is any client frame; which fields apply depends on Type.
type frame struct {
	Type string `json:"type"`
	N    int    `json:"n"`
	quiz.Submission
}

// Frame handles one client frame: answers; anything else is refused with an error frame.
func (ss *session) Frame(ctx context.Context, c *hub.Conn, data []byte, received time.Time) {
	var f frame
	if err := json.Unmarshal(data, &f); err != nil {
		c.Send(quiz.ErrorFrame(quiz.Errorf(quiz.Invalid, "malformed JSON frame"), 0))
		return
	}
	switch f.Type {
	case "answer":
		a, err := ss.answer(ctx, f, received)
		if err != nil {
			ss.srv.answers.WithLabelValues(quiz.ErrorCode(err)).Inc()
			c.Send(quiz.ErrorFrame(err, f.N))
			return
		}
		ss.srv.answers.WithLabelValues("accepted").Inc()
		c.Send(quiz.ResultFrame(a))
	case "ack": // the hub takes well-formed acks
		c.Send(quiz.ErrorFrame(quiz.Errorf(quiz.Invalid, "an ack needs the start's seq, a whole number"), 0))
	default:
		c.Send(quiz.ErrorFrame(quiz.Errorf(quiz.Invalid, "unknown frame type %q", f.Type), 0))
	}
}

func (ss *session) answer(ctx context.Context, f frame, received time.Time) (quiz.Answer, error) {
	if ss.id.Role != quiz.RolePlayer {
		return quiz.Answer{}, quiz.Errorf(quiz.Forbidden, "only players answer")
	}
	if !ss.allow(received) {
		return quiz.Answer{}, quiz.Errorf(quiz.RateLimited, "more than %d answers in a second", answerBurst)
	}
	return ss.srv.svc.Answer(ctx, ss.id, f.N, f.Submission, received)
}

// allow counts an answer frame received at t and reports whether it is within the rate:
// at most answerBurst in any answerWindow. Refused frames do not count.
func (ss *session) allow(t time.Time) bool {
	oldest := ss.answers[ss.next]
	if !oldest.IsZero() && t.Sub(oldest) < answerWindow {
		return false
	}
	ss.answers[ss.next] = t
	ss.next = (ss.next + 1) % answerBurst
	return true
}
