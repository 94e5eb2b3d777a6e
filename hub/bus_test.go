package hub_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/hub"
	"github.com/bulbquiz/bulb/internal/redistest"
	"github.com/bulbquiz/bulb/protocol"
)

// busEngines are the Bus implementations; each returns a constructor of the buses of
// several nodes sharing one medium.
var busEngines = map[string]func(t *testing.T) func(node string) hub.Bus{
	"memory": func(t *testing.T) func(string) hub.Bus {
		b := hub.NewMemoryBus()
		return func(string) hub.Bus { return b }
	},
	"redis": func(t *testing.T) func(string) hub.Bus {
		srv := redistest.Start(t)
		prefix := fmt.Sprintf("test%d:", time.Now().UnixNano())
		return func(node string) hub.Bus { return hub.NewRedisBus(srv.Client(t), prefix, node) }
	},
}

// runNode runs bus as a node until the test ends, delivering to deliver.
func runNode(t *testing.T, bus hub.Bus, deliver func([]byte)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bus.Run(ctx, deliver) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: got %v, want nil", err)
		}
	})
}

// inbox collects a node's messages.
type inbox struct {
	mu   sync.Mutex
	msgs []string
}

func (in *inbox) deliver(m []byte) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.msgs = append(in.msgs, string(m))
}

func (in *inbox) all() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]string(nil), in.msgs...)
}

// mustLive publishes probes until every inbox has one, so that the nodes are subscribed.
func mustLive(t *testing.T, bus hub.Bus, boxes ...*inbox) {
	t.Helper()
	MustPoll(t, testTimeout, func() string {
		if err := bus.Publish(context.Background(), []byte("probe")); err != nil {
			return err.Error()
		}
		time.Sleep(5 * time.Millisecond)
		for i, b := range boxes {
			if len(b.all()) == 0 {
				return fmt.Sprintf("node %d got no probe", i)
			}
		}
		return ""
	})
}

func TestBus(t *testing.T) {
	for name, engine := range busEngines {
		t.Run(name, func(t *testing.T) {
			newBus := engine(t)
			a, b := newBus("a"), newBus("b")
			var boxA, boxB inbox
			runNode(t, a, boxA.deliver)
			runNode(t, b, boxB.deliver)
			mustLive(t, a, &boxA, &boxB)
			ctx := context.Background()

			t.Run("every node gets every message in order", func(t *testing.T) {
				skipA, skipB := len(boxA.all()), len(boxB.all())
				var want []string
				for i := range 100 {
					m := fmt.Sprintf("m%03d", i)
					want = append(want, m)
					from := a
					if i%2 == 1 {
						from = b
					}
					if err := from.Publish(ctx, []byte(m)); err != nil {
						t.Fatal(err)
					}
				}
				MustPoll(t, testTimeout, func() string {
					for name, got := range map[string][]string{"a": boxA.all()[skipA:], "b": boxB.all()[skipB:]} {
						got = withoutProbes(got)
						if len(got) < len(want) {
							return fmt.Sprintf("node %s got %d messages, want %d", name, len(got), len(want))
						}
						for i := range want {
							if got[i] != want[i] {
								return fmt.Sprintf("node %s message %d: got %s, want %s", name, i, got[i], want[i])
							}
						}
					}
					return ""
				})
			})

			t.Run("start numbers are unique and increase", func(t *testing.T) {
				seen := map[uint64]bool{}
				var mu sync.Mutex
				var wg sync.WaitGroup
				for i := range 100 {
					bus := a
					if i%2 == 1 {
						bus = b
					}
					wg.Go(func() {
						seq, err := bus.NextSeq(ctx)
						mu.Lock()
						defer mu.Unlock()
						if err != nil || seen[seq] || seq == 0 {
							t.Errorf("NextSeq: got %d, %v; want a new number", seq, err)
						}
						seen[seq] = true
					})
				}
				wg.Wait()
				s1, _ := a.NextSeq(ctx)
				s2, _ := b.NextSeq(ctx)
				if s2 <= s1 {
					t.Fatalf("got %d then %d, want increasing", s1, s2)
				}
			})

			t.Run("gather waits for every live node's reply", func(t *testing.T) {
				if err := a.Reply(ctx, "q1", []byte("3")); err != nil {
					t.Fatal(err)
				}
				wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
				defer cancel()
				got, err := a.Gather(wctx, "q1")
				if len(got) != 1 || string(got[0]) != "3" || !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("one of two replies: got %q, %v; want [3] and a deadline error", got, err)
				}
				go func() {
					time.Sleep(20 * time.Millisecond)
					b.Reply(ctx, "q2", []byte("4"))
				}()
				if err := a.Reply(ctx, "q2", []byte("3")); err != nil {
					t.Fatal(err)
				}
				wctx, cancel = context.WithTimeout(ctx, testTimeout)
				defer cancel()
				got, err = b.Gather(wctx, "q2")
				slices.SortFunc(got, bytes.Compare)
				if len(got) != 2 || string(got[0]) != "3" || string(got[1]) != "4" || err != nil {
					t.Fatalf("both replies: got %q, %v; want 3 and 4", got, err)
				}
			})
		})
	}
}

func withoutProbes(ms []string) []string {
	out := ms[:0:0]
	for _, m := range ms {
		if m != "probe" {
			out = append(out, m)
		}
	}
	return out
}

// TestStartAcrossNodes runs two hubs as two nodes on one bus: a start on one reaches the
// players of both, frames sent on one reach the other's connections.
func TestStartAcrossNodes(t *testing.T) {
	for name, engine := range busEngines {
		t.Run(name, func(t *testing.T) {
			newBus := engine(t)
			na := MustServer(t, hub.Options{Bus: newBus("a"), Node: "a"})
			nb := MustServer(t, hub.Options{Bus: newBus("b"), Node: "b"})
			mustRun(t, na, nb)
			onA := MustDialMany(t, na, "r", "a", 20, hub.Player)
			onB := MustDialMany(t, nb, "r", "b", 20, hub.Player)
			hostB := MustDial(t, nb, "r", "", hub.Host)
			all := append(append([]*reader{}, onA...), onB...)

			mustHear(t, na, "r", hostB)

			seq, recipients, err := na.h.Start(context.Background(), "r", 1, time.Time{})
			if err != nil || recipients != 40 {
				t.Fatalf("Start: got %d recipients, %v; want 40", recipients, err)
			}
			frames, err := nextAll(all, testTimeout)
			if err != nil {
				t.Fatal(err)
			}
			for i, f := range frames {
				if f.data != startFrame(1, seq) {
					t.Fatalf("client %d: got %s, want %s", i, f.data, startFrame(1, seq))
				}
			}
			MustFrame(t, hostB, startFrame(1, seq))

			nb.h.Send("r", []byte(`{"type":"close","n":1}`))
			if _, err := nextAll(all, testTimeout); err != nil {
				t.Fatalf("a frame sent on b: %v", err)
			}
			nb.h.SendPlayer("r", "a007", []byte(`{"type":"result"}`))
			MustFrame(t, onA[7], `{"type":"result"}`)

			for _, n := range []*testServer{na, nb} {
				st := MustLatest(t, n, "r", func(st hub.StartStats) string {
					if st.Seq != seq || st.Recipients != 20 || len(st.Nodes) != 1 || st.Nodes[0].BusUs <= 0 {
						return fmt.Sprintf("got seq %d recipients %d nodes %+v, want %d, 20 and this node's bus delay", st.Seq, st.Recipients, st.Nodes, seq)
					}
					return ""
				})
				for _, p := range st.Players {
					if p.EnqueueUs < st.Nodes[0].BusUs {
						t.Fatalf("player %s enqueued at %d µs, before its node got the start at %d µs", p.PlayerID, p.EnqueueUs, st.Nodes[0].BusUs)
					}
				}
			}
			// both nodes' records, merged, from either node
			for _, n := range []*testServer{na, nb} {
				MustPoll(t, testTimeout, func() string {
					rep, err := n.h.ClusterFairness(context.Background(), "r", 0)
					if err != nil || len(rep.Starts) != 1 {
						return fmt.Sprintf("got %d starts, %v; want 1", len(rep.Starts), err)
					}
					st := rep.Starts[0]
					if st.Seq != seq || st.Recipients != 40 || st.Acked != 0 || len(st.Nodes) != 2 || st.Nodes[0].Node != "a" || st.Nodes[1].Recipients != 20 || len(rep.Bias) != 40 {
						return fmt.Sprintf("got seq %d, %d recipients, nodes %+v, %d bias rows; want %d, 40, a and b with 20 each, 40", st.Seq, st.Recipients, st.Nodes, len(rep.Bias), seq)
					}
					if st.WrittenUs.Max == 0 || st.SpreadUs < 0 {
						return fmt.Sprintf("got written %+v spread %d, want write times over both nodes", st.WrittenUs, st.SpreadUs)
					}
					return ""
				})
			}
		})
	}
}

// TestNodeMessaging runs three hubs as three nodes on one bus: a notification reaches the
// other nodes' handlers once each, never the sender's; a survey gets every node's answer,
// the asking node's first; a node whose answer fails fails the survey. Without a bus there
// are no other nodes.
func TestNodeMessaging(t *testing.T) {
	for name, engine := range busEngines {
		t.Run(name, func(t *testing.T) {
			newBus := engine(t)
			var mu sync.Mutex
			got := map[string][]string{} // node → notifications received
			nodes := map[string]*hub.Hub{}
			for _, n := range []string{"a", "b", "c"} {
				h := hub.New(hub.Options{Bus: newBus(n), Node: n, Logger: slog.New(slog.DiscardHandler)})
				h.OnNotify("test.hello", func(data []byte) {
					mu.Lock()
					defer mu.Unlock()
					got[n] = append(got[n], string(data))
				})
				h.OnSurvey("test.who", func(_ context.Context, q []byte) ([]byte, error) {
					if n == "c" && string(q) == "fail" {
						return nil, errors.New("c cannot say")
					}
					return []byte(n + ":" + string(q)), nil
				})
				nodes[n] = h
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- h.Run(ctx) }()
				t.Cleanup(func() { cancel(); <-done })
			}
			ctx := context.Background()
			// Until every node is subscribed, a survey misses someone.
			MustPoll(t, testTimeout, func() string {
				answers, err := nodes["b"].Survey(ctx, "test.who", []byte("q"))
				if err != nil {
					t.Fatalf("Survey: %v", err)
				}
				if len(answers) != 3 {
					return fmt.Sprintf("got %d answers, want 3", len(answers))
				}
				if string(answers[0]) != "b:q" {
					t.Fatalf("answers %q: want b's first", answers)
				}
				slices.SortFunc(answers, bytes.Compare)
				if want := []string{"a:q", "b:q", "c:q"}; fmt.Sprintf("%s", answers) != fmt.Sprint(want) {
					t.Fatalf("got answers %s, want %v", answers, want)
				}
				return ""
			})
			if _, err := nodes["a"].Survey(ctx, "test.who", []byte("fail")); err == nil || !strings.Contains(err.Error(), "c cannot say") {
				t.Errorf("a survey that c fails: got %v, want c's error", err)
			}
			if _, err := nodes["a"].Survey(ctx, "test.nobody", nil); err == nil {
				t.Error("a survey nobody answers: got no error")
			}

			if err := nodes["a"].Notify(ctx, "test.hello", []byte("hi")); err != nil {
				t.Fatalf("Notify: %v", err)
			}
			MustPoll(t, testTimeout, func() string {
				mu.Lock()
				defer mu.Unlock()
				if len(got["b"]) != 1 || len(got["c"]) != 1 {
					return fmt.Sprintf("notifications %v, want one each at b and c", got)
				}
				return ""
			})
			time.Sleep(50 * time.Millisecond) // a duplicate, or a's own, would arrive by now
			mu.Lock()
			if len(got["a"]) != 0 || len(got["b"]) != 1 || len(got["c"]) != 1 || got["b"][0] != "hi" {
				t.Errorf("notifications %v, want hi once at b and at c, none at a", got)
			}
			mu.Unlock()
		})
	}
	t.Run("no bus", func(t *testing.T) {
		h := hub.New(hub.Options{Logger: slog.New(slog.DiscardHandler)})
		h.OnNotify("test.hello", func([]byte) { t.Error("a notification reached the only node") })
		h.OnSurvey("test.who", func(_ context.Context, q []byte) ([]byte, error) { return q, nil })
		if err := h.Notify(context.Background(), "test.hello", nil); err != nil {
			t.Errorf("Notify: %v", err)
		}
		answers, err := h.Survey(context.Background(), "test.who", []byte("me"))
		if err != nil || len(answers) != 1 || string(answers[0]) != "me" {
			t.Errorf("Survey: got %q, %v, want only this node's", answers, err)
		}
	})
}

// lostCounts is a bus whose replies cannot be read once a start went out (Redis's pool
// timed out, or its connection reset, while waiting for them).
type lostCounts struct{ hub.Bus }

func (b lostCounts) Gather(ctx context.Context, id string) ([][]byte, error) {
	b.Bus.Gather(ctx, id)
	return nil, errors.New("redis: connection pool timeout")
}

// TestStartCountsLost: a start that went out is not reported as failed when the nodes'
// counts of its recipients cannot be read: the players have it, and the quiz must go on
// (its timed close, its timer frame) rather than tell the host it failed.
func TestStartCountsLost(t *testing.T) {
	n := MustServer(t, hub.Options{Bus: lostCounts{hub.NewMemoryBus()}, Node: "a"})
	mustRun(t, n)
	players := MustDialMany(t, n, "r", "a", 3, hub.Player)
	mustHear(t, n, "r", MustDial(t, n, "r", "", hub.Host))
	seq, _, err := n.h.Start(context.Background(), "r", 1, time.Time{})
	if err != nil || seq == 0 {
		t.Fatalf("Start: got seq %d, %v; want the start reported sent", seq, err)
	}
	if _, err := nextAll(players, testTimeout); err != nil {
		t.Fatalf("the players: %v", err)
	}
}

// TestForgetAcrossNodes: a room forgotten on one node is forgotten on every node: their
// records of its starts go, and its host and presenter connections get the farewell frame
// last and are closed with 4001.
func TestForgetAcrossNodes(t *testing.T) {
	bus := hub.NewMemoryBus()
	na := MustServer(t, hub.Options{Bus: bus, Node: "a"})
	nb := MustServer(t, hub.Options{Bus: bus, Node: "b"})
	mustRun(t, na, nb)
	players := MustDialMany(t, nb, "r", "b", 3, hub.Player)
	hostB := MustDial(t, nb, "r", "", hub.Host)
	mustHear(t, na, "r", hostB)
	if _, recipients, err := na.h.Start(context.Background(), "r", 1, time.Time{}); err != nil || recipients != 3 {
		t.Fatalf("Start: %d recipients, %v; want 3", recipients, err)
	}
	if _, err := nextAll(players, testTimeout); err != nil {
		t.Fatal(err)
	}
	if got := len(nb.h.Fairness("r", 0).Starts); got != 1 {
		t.Fatalf("node b keeps %d starts, want 1", got)
	}
	farewell := `{"type":"deleted","message":"the room was deleted"}`
	na.h.Forget(context.Background(), "r", []byte(farewell))
	if frames := MustClose(t, hostB, protocol.CloseRemoved); len(frames) == 0 || frames[len(frames)-1] != farewell {
		t.Fatalf("the host's frames before the close: %q, want the farewell last", frames)
	}
	for i := range players { // the quiz removes them, each with its own reason
		nb.h.Remove("r", fmt.Sprintf("b%03d", i), []byte(`{"type":"removed"}`))
	}
	MustPoll(t, testTimeout, func() string {
		if got := len(nb.h.Fairness("r", 0).Starts); got != 0 {
			return fmt.Sprintf("node b still keeps %d starts", got)
		}
		return ""
	})
}

// TestSurveyDoesNotHoldStarts: a node busy answering a survey (a room's fairness records
// take a while) still fans out the starts other nodes publish meanwhile.
func TestSurveyDoesNotHoldStarts(t *testing.T) {
	bus := hub.NewMemoryBus()
	na := MustServer(t, hub.Options{Bus: bus, Node: "a"})
	nb := MustServer(t, hub.Options{Bus: bus, Node: "b"})
	release := make(chan struct{})
	answering := make(chan struct{}, 1)
	nb.h.OnSurvey("slow", func(ctx context.Context, _ []byte) ([]byte, error) {
		answering <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return []byte(`"done"`), nil
	})
	na.h.OnSurvey("slow", func(context.Context, []byte) ([]byte, error) { return []byte(`"done"`), nil })
	mustRun(t, na, nb)
	players := MustDialMany(t, nb, "r", "b", 3, hub.Player)
	hostB := MustDial(t, nb, "r", "", hub.Host)
	mustHear(t, na, "r", hostB)
	surveyed := make(chan error, 1)
	go func() {
		_, err := na.h.Survey(context.Background(), "slow", nil)
		surveyed <- err
	}()
	<-answering // b is busy with the survey
	go na.h.Start(context.Background(), "r", 1, time.Time{})
	if _, err := nextAll(players, 2*time.Second); err != nil {
		t.Fatalf("the start while node b answers a survey: %v", err)
	}
	close(release)
	if err := <-surveyed; err != nil {
		t.Fatalf("the survey: %v", err)
	}
}

// mustRun runs each node's hub until the test ends.
func mustRun(t *testing.T, nodes ...*testServer) {
	for _, n := range nodes {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- n.h.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
}

// mustHear waits until a frame for the room's hosts sent on from reaches host (frames
// published before a node subscribed are lost), and drains the probes.
func mustHear(t *testing.T, from *testServer, room string, host *reader) {
	t.Helper()
	MustPoll(t, testTimeout, func() string {
		from.h.SendHosts(room, []byte(`{"type":"probe"}`))
		if f, err := host.next(20 * time.Millisecond); err != nil || f.data != `{"type":"probe"}` {
			return "the node does not hear the bus yet"
		}
		return ""
	})
	for {
		if _, err := host.next(50 * time.Millisecond); err != nil {
			return
		}
	}
}
