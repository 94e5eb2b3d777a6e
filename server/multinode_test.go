package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/internal/clocksync"
	"github.com/bulbquiz/bulb/internal/redistest"
)

// The server binary, built once for the tests that run real processes.
var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// MustBinary builds the server once and returns the path of the binary.
func MustBinary(tb testing.TB) string {
	tb.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "bulb-bin"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "bulb")
		out, err := exec.Command("go", "build", "-race", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		tb.Fatal(binErr)
	}
	return binPath
}

// node is a Bulb server running as its own process.
type node struct {
	testServer
	cmd  *exec.Cmd
	done chan error
}

// MustStartNode runs a Bulb process on redisURL until the test ends or kill; args are
// added to its command line. Its judge uses the test's judgeEnv.
func MustStartNode(tb testing.TB, redisURL, name string, args ...string) *node {
	tb.Helper()
	var env []string
	for k, v := range judgeEnv(tb) {
		env = append(env, k+"="+v)
	}
	return MustStartProcess(tb, name, env, nil,
		append([]string{"--redis", redisURL, "--node", name, "--ping-interval", "200ms"}, args...)...)
}

// MustStartProcess runs the Bulb binary as a process of its own, listening on a free
// loopback port, until the test ends or kill: with the test's admin token, env added to
// this process's environment, extra as its descriptors 3 and up, and args.
func MustStartProcess(tb testing.TB, name string, env []string, extra []*os.File, args ...string) *node {
	tb.Helper()
	cmd := exec.Command(MustBinary(tb), append([]string{"--addr", "127.0.0.1:0"}, withData(tb, args)...)...)
	cmd.Env = append(append(os.Environ(), "BULB_ADMIN_TOKEN="+testAdmin), env...)
	cmd.ExtraFiles = extra
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	n := &node{testServer: testServer{Admin: testAdmin}, cmd: cmd, done: make(chan error, 1)}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
			if judgeRunning.MatchString(sc.Text()) {
				urls <- "" // a judge process serves no HTTP
			}
		}
		io.Copy(io.Discard, stdout)
		n.done <- cmd.Wait()
	}()
	select {
	case n.URL = <-urls:
	case err := <-n.done:
		tb.Fatalf("node %s exited: %v", name, err)
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		tb.Fatalf("node %s did not start within 20 s", name)
	}
	n.stop = func() {
		if cmd.ProcessState != nil {
			return
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			tb.Errorf("node %s did not stop on SIGTERM within 15 s", name)
		}
	}
	tb.Cleanup(func() { n.stop() })
	return n
}

// kill ends the node at once, as a crash would.
func (n *node) kill(tb testing.TB) {
	tb.Helper()
	n.cmd.Process.Kill()
	<-n.done
}

// TestNodesShareOneQuiz runs three server processes on one Redis with 300 players spread
// over them: a start on one node reaches everyone, answers racing on three nodes get
// unique ranks and one winner set, and a player whose node dies keeps its score on another.
func TestNodesShareOneQuiz(t *testing.T) {
	t.Parallel()
	const players = 300
	srv := redistest.Start(t)
	nodes := []*node{MustStartNode(t, srv.URL(), "n1"), MustStartNode(t, srv.URL(), "n2"), MustStartNode(t, srv.URL(), "n3")}
	quiz := `{"winners":[100,60,30],"questions":[{"kind":"choice","text":"a","choices":["x","y"],"answer":0}]}`
	code, host := nodes[0].MustRoom(t, quiz)
	room := "/api/rooms/" + code
	clients := make([]*wsClient, players)
	tokens := make([]string, players)
	ids := make([]string, players)
	for i := range clients {
		n := nodes[i%3]
		ids[i], tokens[i] = n.MustJoin(t, code, fmt.Sprintf("p%03d", i)) // joined on its own node
		clients[i] = n.MustDial(t, tokens[i])
	}
	for _, c := range clients {
		c.next(t, "welcome")
	}

	nodes[1].mustCall(t, 200, "POST", room+"/questions/1/open", host, nil, nil)
	for _, c := range clients {
		if q := c.next(t, "question"); q.N != 1 {
			t.Fatalf("got question %d, want 1", q.N)
		}
	}
	var st struct {
		Seq        uint64
		Recipients int
	}
	nodes[2].mustCall(t, 200, "POST", room+"/questions/1/start", host, nil, &st)
	if st.Recipients != players {
		t.Fatalf("got %d recipients over three nodes, want %d", st.Recipients, players)
	}
	for i, c := range clients {
		f := c.next(t, "start")
		if f.Seq != st.Seq {
			t.Fatalf("client %d on node %d: got start %s, want seq %d", i, i%3+1, f.raw, st.Seq)
		}
		c.send(t, map[string]any{"type": "ack", "seq": f.Seq})
	}

	// any node sees who is connected anywhere, and the whole start's fairness
	var state struct {
		Players []struct{ Connected bool }
	}
	nodes[0].mustCall(t, 200, "GET", room, host, nil, &state)
	online := 0
	for _, p := range state.Players {
		if p.Connected {
			online++
		}
	}
	if online != players {
		t.Fatalf("node 1 sees %d of %d players connected, want all", online, players)
	}
	var fair struct {
		Starts []struct {
			Seq        uint64
			Recipients int
			Acked      int
			Nodes      []struct {
				Node       string
				BusUs      int64
				Recipients int
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		nodes[1].mustCall(t, 200, "GET", room+"/fairness", host, nil, &fair)
		if len(fair.Starts) == 1 && fair.Starts[0].Acked == players || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(fair.Starts) != 1 || fair.Starts[0].Recipients != players || fair.Starts[0].Acked != players || len(fair.Starts[0].Nodes) != 3 {
		t.Fatalf("got fairness %+v, want one start to %d players on 3 nodes, all acked", fair.Starts, players)
	}
	for _, n := range fair.Starts[0].Nodes {
		if n.Recipients != players/3 || n.BusUs <= 0 {
			t.Fatalf("node %s: got %d recipients, bus delay %d µs; want %d and a delay", n.Node, n.Recipients, n.BusUs, players/3)
		}
		t.Logf("node %s: publish to fan-out %d µs", n.Node, n.BusUs) // the cross-node part, for the record
	}

	MustRaceAnswers(t, clients, 1) // on three nodes
	type answers struct {
		Answers []struct {
			PlayerID string
			Rank     int
			Points   int
		}
	}
	var first answers
	nodes[0].mustCall(t, 200, "GET", room+"/questions/1/answers", host, nil, &first)
	for _, n := range nodes[1:] {
		var a answers
		n.mustCall(t, 200, "GET", room+"/questions/1/answers", host, nil, &a)
		if fmt.Sprint(a) != fmt.Sprint(first) {
			t.Fatalf("nodes disagree on the answers:\n%v\n%v", first, a)
		}
	}
	if len(first.Answers) != players || first.Answers[0].Points != 100 || first.Answers[2].Points != 30 || first.Answers[3].Points != 0 {
		t.Fatalf("got %d answers, top points %v, want %d and 100, 60, 30 then 0", len(first.Answers), first.Answers[:4], players)
	}
	winner := first.Answers[0].PlayerID
	w := slices.Index(ids, winner)

	// the winner's node dies; the winner reconnects to another node and keeps its score
	dead := nodes[w%3]
	dead.kill(t)
	other := nodes[(w+1)%3]
	c := other.MustDial(t, tokens[w])
	welcome := c.next(t, "welcome")
	var wf struct {
		PlayerID string
		Score    int
	}
	if err := json.Unmarshal(welcome.raw, &wf); err != nil || wf.PlayerID != winner || wf.Score != 100 {
		t.Fatalf("reconnected on another node: got %s, want player %s with score 100", welcome.raw, winner)
	}
	other.mustCall(t, 200, "POST", room+"/questions/1/close", host, nil, nil)
	if f := c.next(t, "close"); f.N != 1 {
		t.Fatalf("got close %d, want 1", f.N)
	}
}

// TestTimedStartFiresOnce schedules starts and closes on one of three nodes: every node
// keeps a timer and races for the lease, and each still fires exactly once, on time, when
// the node that scheduled it is killed before its time.
func TestTimedStartFiresOnce(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	nodes := []*node{MustStartNode(t, srv.URL(), "n1"), MustStartNode(t, srv.URL(), "n2"), MustStartNode(t, srv.URL(), "n3")}
	quiz := `{"questions":[{"kind":"choice","text":"a","choices":["x","y"],"answer":0},{"kind":"choice","text":"b","choices":["x","y"],"answer":1}]}`
	code, host := nodes[0].MustRoom(t, quiz)
	room := "/api/rooms/" + code
	var clients []*wsClient // on nodes 2 and 3, which live through the test
	for i := range 20 {
		n := nodes[1+i%2]
		_, token := n.MustJoin(t, code, fmt.Sprintf("t%02d", i))
		c := n.MustDial(t, token)
		c.next(t, "welcome")
		clients = append(clients, c)
	}

	// onlyOne checks every client gets exactly one frame of the type for question q: a
	// close not before at, a start (synced) revealed at at.
	onlyOne := func(typ string, q int, at time.Time) {
		t.Helper()
		var seq uint64
		for i, c := range clients {
			f := c.next(t, typ)
			onTime := !f.at.Before(at)
			if typ == "start" {
				onTime = clocksync.Time(f.RevealAt).Sub(at).Abs() <= time.Microsecond
			}
			if f.N != q || !onTime || (seq != 0 && f.Seq != seq) {
				t.Fatalf("client %d: got %s at %v, want question %d's one %s at %v", i, f.raw, f.at, q, typ, at)
			}
			seq = f.Seq
		}
		time.Sleep(time.Second) // a second firing would come within this
		for i, c := range clients {
			for len(c.frames) > 0 {
				if f := <-c.frames; f.Type == typ {
					t.Fatalf("client %d got a second %s: %s", i, typ, f.raw)
				}
			}
		}
	}
	schedule := func(n *node, q int) time.Time {
		t.Helper()
		n.mustCall(t, 200, "POST", fmt.Sprintf("%s/questions/%d/open", room, q), host, nil, nil)
		at := time.Now().Add(1500 * time.Millisecond).UTC()
		n.mustCall(t, 202, "POST", fmt.Sprintf("%s/questions/%d/start", room, q), host, fmt.Sprintf(`{"at":%q}`, at.Format(time.RFC3339Nano)), nil)
		return at
	}

	closeAt := func(n *node, q int, at time.Time) time.Time {
		t.Helper()
		n.mustCall(t, 202, "POST", fmt.Sprintf("%s/questions/%d/close", room, q), host, fmt.Sprintf(`{"at":%q}`, at.Format(time.RFC3339Nano)), nil)
		return at
	}

	// three live nodes race for question 1's start and close
	at := schedule(nodes[0], 1)
	end := closeAt(nodes[0], 1, at.Add(3*time.Second)) // after onlyOne("start") has drained
	onlyOne("start", 1, at)
	onlyOne("close", 1, end)

	// question 2's start and close are scheduled on node 1, which dies before either
	at = schedule(nodes[0], 2)
	end = closeAt(nodes[0], 2, at.Add(3*time.Second))
	nodes[0].kill(t)
	onlyOne("start", 2, at)
	onlyOne("close", 2, end)
	var state struct{ Phase string }
	nodes[2].mustCall(t, 200, "GET", room, host, nil, &state)
	if state.Phase != "closed" {
		t.Fatalf("got phase %s, want closed", state.Phase)
	}
}
