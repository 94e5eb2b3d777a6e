package lagproxy

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// TestDirections: Down delays what the server sends, Up what the client sends. The test's
// server stamps when each line arrives and echoes it; one clock times both ways.
func TestDirections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	arrived := make(chan time.Time, 8)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			arrived <- time.Now()
			if _, err := c.Write([]byte(line)); err != nil {
				return
			}
		}
	}()
	link := Link{Down: Delay{Ms: 60}, Up: Delay{Ms: 10}}
	ps, err := Start(ln.Addr().String(), []Link{link})
	if err != nil {
		t.Fatalf("Start: got %v, want nil", err)
	}
	defer ps.Stop()
	c, err := net.Dial("tcp", ps.Addr(0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for i := range 3 {
		sent := time.Now()
		if _, err := c.Write([]byte("ping\n")); err != nil {
			t.Fatal(err)
		}
		if _, err := r.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		back := time.Now()
		at := <-arrived
		up, down := at.Sub(sent), back.Sub(at)
		// At least the delay each way; the way down the longer by far (a loaded machine
		// adds to either, not 50 ms to the way up alone).
		if up < 10*time.Millisecond || down < 60*time.Millisecond || down-up < 25*time.Millisecond {
			t.Errorf("exchange %d: got up %v, down %v; want about 10 ms up and 60 ms down", i, up, down)
		}
	}
	if got, want := link.String(), "60±0 ms down, 10±0 ms up"; got != want {
		t.Errorf("String: got %q, want %q", got, want)
	}
	if got, want := Symmetric(25, 3).String(), "25±3 ms"; got != want {
		t.Errorf("String: got %q, want %q", got, want)
	}
}
