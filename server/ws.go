package main

import (
	"context"
	"crypto/subtle"
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"

	"github.com/bulbquiz/bulb/hub"
	"github.com/bulbquiz/bulb/protocol"
	"github.com/bulbquiz/bulb/quiz"
)

// websocket upgrades GET /ws?token=T and hands the connection to the hub, which serves it
// until it closes. The token is checked before the upgrade, so a bad one gets an ordinary
// JSON error. The admin token names its room too (&room=CODE): it is a host of every room.
func (s *server) websocket(c echo.Context) error {
	id, err := s.wsIdentity(c)
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
	switch id.Role {
	case quiz.RoleHost:
		client.Role = hub.Host
	case quiz.RolePresenter:
		client.Role = hub.Presenter
	}
	sess := &session{srv: s, id: id}
	// The hub serves the connection on its own goroutines; returning frees the request.
	if err := s.hub.Attach(c.Request().Context(), ws, client, sess); err != nil {
		s.log.Debug("connection refused", "room", id.Room, "player", id.PlayerID, "err", err)
	}
	return nil
}

// wsIdentity is who a /ws request's token belongs to: the admin token, with the room it
// connects to as a host, or a host, player or presenter token.
func (s *server) wsIdentity(c echo.Context) (quiz.Identity, error) {
	token := c.QueryParam("token")
	if token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(s.adminToken)) != 1 {
		return s.svc.Identify(c.Request().Context(), token)
	}
	code := c.QueryParam("room")
	if code == "" {
		return quiz.Identity{}, quiz.Errorf(protocol.Invalid, "the admin token connects to a room: add &room=CODE")
	}
	if _, err := s.svc.RoomHead(c.Request().Context(), code); err != nil {
		return quiz.Identity{}, err
	}
	return quiz.Identity{Room: code, Role: quiz.RoleHost}, nil
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
	if err != nil && ss.id.Role == quiz.RolePlayer && quiz.ErrorCode(err) == protocol.NotFound {
		// removed between the token's check and now: the removal missed this connection
		c.Close(protocol.CloseRemoved, "removed", protocol.Encode(protocol.RemovedFrame{Message: quiz.ErrorMessage(err)}))
		return
	}
	if err != nil {
		c.Send(quiz.ErrorFrame(err, 0))
		return
	}
	c.Send(frame)
}

// Frame handles one client frame other than an ack (the hub records those): an answer.
func (ss *session) Frame(ctx context.Context, c *hub.Conn, f protocol.ClientFrame, received time.Time) {
	// protocol.DecodeClient lets only answers and acks through; a type added to it must be
	// handled here.
	a, err := ss.answer(ctx, c, f, received)
	if err != nil {
		ss.srv.answers.WithLabelValues(string(quiz.ErrorCode(err))).Inc()
		c.Send(quiz.ErrorFrame(err, f.N))
		return
	}
	ss.srv.answers.WithLabelValues("accepted").Inc()
	c.Send(quiz.ResultFrame(a))
}

// answer hands an answer frame to the service with what the connection knows of the
// question's start.
func (ss *session) answer(ctx context.Context, c *hub.Conn, f protocol.ClientFrame, received time.Time) (protocol.Answer, error) {
	if ss.id.Role != quiz.RolePlayer {
		return protocol.Answer{}, quiz.Errorf(protocol.Forbidden, "only players answer")
	}
	if !ss.allow(received) {
		return protocol.Answer{}, quiz.Errorf(protocol.RateLimited, "more than %d answers in a second", answerBurst)
	}
	sd, _ := c.Delivery(f.N)
	d := quiz.Delivery{Written: sd.Written, RTT: sd.RTT, Reveal: sd.Reveal, ReturnDelay: sd.ReturnDelay}
	return ss.srv.svc.Answer(ctx, ss.id, f.N, f.Response, received, d)
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
