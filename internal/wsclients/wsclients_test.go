package wsclients

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The client process's Config, when this test binary is one.
const (
	urlEnv     = "WSCLIENTS_TEST_URL"
	clientsEnv = "WSCLIENTS_TEST_CLIENTS"
	welcomeEnv = "WSCLIENTS_TEST_WELCOME"
)

// TestMain makes the test binary the client process when a test starts it.
func TestMain(m *testing.M) {
	if url := os.Getenv(urlEnv); url != "" {
		n, _ := strconv.Atoi(os.Getenv(clientsEnv))
		cfg := Config{URL: url, N: n, Welcome: os.Getenv(welcomeEnv), Now: func() int64 { return time.Now().UnixNano() }}
		if err := Serve(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "client process:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// server accepts WebSocket clients, welcomes each and keeps them for broadcast.
type server struct {
	mu    sync.Mutex
	conns []*websocket.Conn
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ctx := ws.CloseRead(r.Context())
	if ws.Write(ctx, websocket.MessageText, []byte("hello")) != nil {
		return
	}
	s.mu.Lock()
	s.conns = append(s.conns, ws)
	s.mu.Unlock()
	<-ctx.Done()
}

func (s *server) broadcast(tb testing.TB, msg string) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ws := range s.conns {
		if err := ws.Write(context.Background(), websocket.MessageText, []byte(msg)); err != nil {
			tb.Fatalf("broadcast: got %v, want nil", err)
		}
	}
}

// startClients starts this test binary as a client process of n clients to srv.
func startClients(t *testing.T, srv *httptest.Server, n int, welcome string) (*Process, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), urlEnv+"=ws"+strings.TrimPrefix(srv.URL, "http")+"/?id=",
		clientsEnv+"="+strconv.Itoa(n), welcomeEnv+"="+welcome)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	p, err := Start(cmd)
	if err != nil {
		t.Fatalf("Start: got %v, want nil", err)
	}
	return p, &out
}

func TestProcess(t *testing.T) {
	const n = 20
	s := &server{}
	srv := httptest.NewServer(s)
	defer srv.Close()
	p, out := startClients(t, srv, n, "hello")
	if err := p.AwaitReady(time.Minute); err != nil {
		p.Stop(time.Minute) // before reading out, which the process writes until it ends
		t.Fatalf("AwaitReady: got %v, want nil; client process output:\n%s", err, out)
	}
	receipts := make([]int64, n)
	for round := range 3 {
		t0 := time.Now().UnixNano()
		s.broadcast(t, fmt.Sprintf("frame %d", round))
		if err := p.AwaitDone(time.Minute); err != nil {
			t.Fatalf("round %d: AwaitDone: got %v, want nil", round, err)
		}
		t1 := time.Now().UnixNano()
		if err := p.Receipts(receipts, time.Minute); err != nil {
			t.Fatalf("round %d: Receipts: got %v, want nil", round, err)
		}
		for i, at := range receipts {
			if at < t0 || at > t1 {
				t.Errorf("round %d, client %d: got receipt %d, want in [%d, %d]", round, i, at, t0, t1)
			}
		}
	}
	if err := p.Stop(time.Minute); err != nil {
		t.Errorf("Stop: got %v, want nil; client process output:\n%s", err, out)
	}
}

func TestProcessWrongWelcome(t *testing.T) {
	srv := httptest.NewServer(&server{})
	defer srv.Close()
	p, out := startClients(t, srv, 3, "bonjour")
	if err := p.AwaitReady(time.Minute); err == nil {
		t.Errorf("AwaitReady: got nil, want an error")
	}
	if err := p.Stop(time.Minute); err == nil {
		t.Errorf("Stop: got nil, want the client process's failure")
	}
	if want := `welcome: got "hello"`; !strings.Contains(out.String(), want) {
		t.Errorf("client process output: got %q, want it to contain %q", out, want)
	}
}
