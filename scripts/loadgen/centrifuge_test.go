package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startPeer builds scripts/peer and runs it on a free loopback port until the test ends;
// it returns the peer's base URL.
func startPeer(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "peer")
	if out, err := exec.Command("go", "build", "-o", bin, "../peer").CombinedOutput(); err != nil {
		tb.Fatalf("go build ../peer: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	_, url, ok := strings.Cut(strings.TrimSpace(line), "serving ")
	url, _, _ = strings.Cut(url, " ")
	if err != nil || !ok {
		tb.Fatalf("peer said %q (%v), want its URL", line, err)
	}
	return url
}

// peerStats reads the peer's GET /stats.
func peerStats(tb testing.TB, url string) (s struct{ Clients, Subscribers, Syncs, Seen, Acks, Others int }) {
	tb.Helper()
	resp, err := http.Get(url + "/stats")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		tb.Fatal(err)
	}
	return s
}

// TestLoadgenCentrifuge runs page-like clients against the real peer: they subscribe,
// sync their clocks through its RPC, receive its starts and report seen; a client that
// asks for another channel is refused.
func TestLoadgenCentrifuge(t *testing.T) {
	const clients, starts = 10, 3
	url := startPeer(t)
	wait := runLoadgen(t, "--protocol", "centrifuge", "--url", url, "--room", "room", "--clients", fmt.Sprint(clients),
		"--rate", "0", "--starts", fmt.Sprint(starts), "--grace", "5s")
	deadline := time.Now().Add(10 * time.Second)
	for peerStats(t, url).Subscribers < clients {
		if time.Now().After(deadline) {
			t.Fatalf("got %d subscribers within 10 s, want %d", peerStats(t, url).Subscribers, clients)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // the sync burst
	for i := 1; i <= starts; i++ {
		resp, err := http.Post(fmt.Sprintf("%s/start?n=%d", url, i), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		var got struct{ Seq, Recipients int }
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if got.Seq != i || got.Recipients != clients {
			t.Errorf("start %d: got %+v, want seq %d, %d recipients", i, got, i, clients)
		}
		time.Sleep(30 * time.Millisecond)
	}
	r := wait()
	if r.Connected != clients || r.Failed != 0 || r.Dropped != 0 || r.Protocol != "centrifuge" {
		t.Errorf("got %d connected, %d failed, %d dropped over %q, want %d, 0, 0 over centrifuge (failures %v)",
			r.Connected, r.Failed, r.Dropped, r.Protocol, clients, r.Failures)
	}
	if r.StartsSeen != starts || r.Seen != clients*starts || r.Acks != 0 || r.SyncReplies < clients*syncBurst || r.ClockErrorMs == nil {
		t.Errorf("got %d starts, %d seen, %d acks, %d sync replies, clock error %v, want %d, %d, 0, ≥ %d, some",
			r.StartsSeen, r.Seen, r.Acks, r.SyncReplies, r.ClockErrorMs, starts, clients*starts, clients*syncBurst)
	}
	for i, s := range r.Starts {
		if s.Seq != uint64(i+1) || s.N != i+1 || s.Receivers != clients {
			t.Errorf("start %d: got seq %d n %d receivers %d, want %d, %d, %d", i, s.Seq, s.N, s.Receivers, i+1, i+1, clients)
		}
	}
	if st := peerStats(t, url); st.Seen != clients*starts || st.Syncs != r.Syncs || st.Others != 0 {
		t.Errorf("the peer got %+v, want %d seen, %d syncs, no others", st, clients*starts, r.Syncs)
	}

	r = runLoadgen(t, "--protocol", "centrifuge", "--url", url, "--room", "elsewhere", "--clients", "2", "--rate", "0", "--duration", "2s")()
	if r.Connected != 0 || r.Failed != 2 {
		t.Errorf("another channel: got %d connected, %d failed, want 0, 2", r.Connected, r.Failed)
	}
	for reason := range r.Failures {
		if !strings.Contains(reason, "permission denied") {
			t.Errorf("another channel: got failure %q, want permission denied", reason)
		}
	}
}
