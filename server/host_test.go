package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/internal/redistest"
)

// TestProcessesShareHostBoxes: two Bulb processes on one host with the default box flags
// (the same box ids, directories and lock files), each given 40 code submissions at once,
// judge every one right: a box is the host's, and the lock files keep it to one run at a
// time whatever process runs it (two processes once killed each other's runs). Once with
// two in-memory engines, once with one of them a node on Redis.
func TestProcessesShareHostBoxes(t *testing.T) {
	t.Parallel()
	mustSandbox(t)
	for _, tt := range []struct {
		name  string
		redis bool
	}{{"memory and memory", false}, {"memory and redis", true}} {
		t.Run(tt.name, func(t *testing.T) {
			a := MustStartProcess(t, "a", nil, nil)
			var b *node
			if tt.redis {
				b = MustStartProcess(t, "b", nil, nil, "--redis", redistest.Start(t).URL(), "--node", "b")
			} else {
				b = MustStartProcess(t, "b", nil, nil)
			}
			var wg sync.WaitGroup
			for _, n := range []*node{a, b} {
				wg.Go(func() { mustJudge40(t, n) })
			}
			wg.Wait()
		})
	}
}

// mustJudge40 has 40 students of a new room on n submit at once (right and wrong, Python
// and C) and checks that each gets its one right verdict.
func mustJudge40(t *testing.T, n *node) {
	const students = 40
	code, host := n.MustRoom(t, codeQuiz)
	room := "/api/rooms/" + code
	clients := make([]*wsClient, students)
	for i := range clients {
		_, token := n.MustJoin(t, code, fmt.Sprintf("s%d", i))
		clients[i] = n.MustDial(t, token)
		clients[i].next(t, "welcome")
	}
	n.mustCall(t, 200, "POST", room+"/questions/1/open", host, nil, nil)
	n.mustCall(t, 200, "POST", room+"/questions/1/start", host, nil, nil)
	programs := []struct{ lang, src, want string }{
		{"python", pyRight, "AC"}, {"python", pyWrong, "WA"}, {"c", cRight, "AC"}, {"python", pyRight, "AC"},
	}
	var wg sync.WaitGroup
	for i, c := range clients {
		p := programs[i%len(programs)]
		wg.Go(func() {
			c.next(t, "start") // the bulb lit: answers count from now
			sub := c.submit(t, p.lang, p.src)
			if v := c.verdict(t, sub, 3*time.Minute); v.Verdict != p.want {
				t.Errorf("student %d (%s): verdict %s (%s), want %s", i, p.lang, v.Verdict, v.Message, p.want)
			}
		})
	}
	wg.Wait()
}

// TestSubmissionSeesNoHostDescriptors: descriptors the server process inherited without
// close-on-exec (here a file and a pipe, its descriptors 3 and 4) never reach a submission:
// a program that looks for any descriptor above 2 finds none.
func TestSubmissionSeesNoHostDescriptors(t *testing.T) {
	t.Parallel()
	mustSandbox(t)
	secret, err := os.Create(filepath.Join(t.TempDir(), "host-file"))
	if err != nil {
		t.Fatal(err)
	}
	defer secret.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	probe, err := os.ReadFile("../judge/testdata/hostile/fd_probe.py")
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for k, v := range judgeEnv(t) {
		env = append(env, k+"="+v)
	}
	n := MustStartProcess(t, "leaky", env, []*os.File{secret, w})
	code, host := n.MustRoom(t, `{"questions":[{"kind":"code","text":"Your descriptors?","languages":["python"],
		"tests":[{"in":"","out":"none\n"}]}]}`)
	room := "/api/rooms/" + code
	_, token := n.MustJoin(t, code, "probe")
	c := n.MustDial(t, token)
	c.next(t, "welcome")
	n.mustCall(t, 200, "POST", room+"/questions/1/open", host, nil, nil)
	n.mustCall(t, 200, "POST", room+"/questions/1/start", host, nil, nil)
	c.next(t, "start")
	sub := c.submit(t, "python", string(probe))
	if v := c.verdict(t, sub, time.Minute); v.Verdict != "AC" {
		t.Errorf("the descriptor probe: verdict %s (%s), want AC: it must see no descriptor above 2", v.Verdict, v.Message)
	}
}
