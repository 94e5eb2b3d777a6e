package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// maskedFrame builds a client frame (FIN set, masked with a fixed key) with the given
// opcode and payload.
func maskedFrame(op byte, payload []byte) []byte {
	b := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	key := []byte{1, 2, 3, 4}
	b = append(b, key...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

func TestFrameSplitter(t *testing.T) {
	preamble := []byte("GET /ws?token=x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n")
	text := maskedFrame(0x1, []byte(`{"type":"ack","seq":1}`))
	pong := maskedFrame(opPong, []byte("abcd"))
	medium := maskedFrame(0x1, bytes.Repeat([]byte("m"), 300))  // 16-bit length
	large := maskedFrame(0x2, bytes.Repeat([]byte("L"), 70000)) // 64-bit length
	frames := []segment{{data: text}, {data: pong, pong: true}, {data: medium}, {data: pong, pong: true}, {data: large}}
	stream := bytes.Join([][]byte{preamble, text, pong, medium, pong, large}, nil)

	for _, chunk := range []int{1, 2, 3, 7, 64, 1000, len(stream)} {
		var s frameSplitter
		var got []segment
		for i := 0; i < len(stream); i += chunk {
			got = append(got, s.feed(stream[i:min(i+chunk, len(stream))])...)
		}
		// The preamble comes in as many pieces as it was written in; then whole frames.
		if len(got) < len(frames)+1 {
			t.Fatalf("chunks of %d: got %d segments, want the preamble and %d frames", chunk, len(got), len(frames))
		}
		split := len(got) - len(frames)
		var pre []byte
		for _, seg := range got[:split] {
			if seg.pong {
				t.Errorf("chunks of %d: a piece of the preamble is taken for a pong", chunk)
			}
			pre = append(pre, seg.data...)
		}
		if !bytes.Equal(pre, preamble) {
			t.Errorf("chunks of %d: got preamble %q, want %q", chunk, pre, preamble)
		}
		for i, want := range frames {
			if g := got[split+i]; g.pong != want.pong || !bytes.Equal(g.data, want.data) {
				t.Errorf("chunks of %d, frame %d: got pong=%v %d bytes, want pong=%v %d bytes",
					chunk, i, g.pong, len(g.data), want.pong, len(want.data))
			}
		}
		if len(s.buf) != 0 {
			t.Errorf("chunks of %d: %d bytes left over, want 0", chunk, len(s.buf))
		}
	}
}

func TestFrameSplitterCRLFAcrossWrites(t *testing.T) {
	var s frameSplitter
	pong := maskedFrame(opPong, nil)
	s.feed([]byte("GET / HTTP/1.1\r\nA: b\r"))
	s.feed([]byte("\n\r"))
	got := s.feed(append([]byte("\n"), pong...))
	if len(got) != 2 || got[0].pong || string(got[0].data) != "\n" || !got[1].pong {
		t.Fatalf("got %+v, want the preamble's last byte then the pong", got)
	}
}

// TestPongConn runs the real WebSocket library on both ends: the server pings a client
// whose connection holds back pongs, and the ping's round trip includes the delay while
// the client's other frames are not held.
func TestPongConn(t *testing.T) {
	const delay = 150 * time.Millisecond
	type result struct {
		rtt, echo time.Duration
		err       error
	}
	done := make(chan result, 1)
	srv := serveWS(5*time.Second, func(ctx context.Context, c *websocket.Conn) {
		// The reader reads on, for Ping to see its pong.
		msgs := make(chan string, 1)
		go func() {
			defer close(msgs)
			for {
				_, msg, err := c.Read(ctx)
				if err != nil {
					return
				}
				msgs <- string(msg)
			}
		}()
		var res result
		pinged := make(chan error, 1)
		go func() {
			t0 := time.Now()
			err := c.Ping(ctx)
			res.rtt = time.Since(t0)
			pinged <- err
		}()
		// A text frame from the client arrives at once, although a pong is held back.
		t0 := time.Now()
		msg := <-msgs
		res.echo = time.Since(t0)
		if msg != "hello" {
			res.err = errString("read " + msg)
		} else {
			res.err = <-pinged
		}
		done <- res
	}, func(err error) { done <- result{err: err} })
	defer srv.Close()

	var held atomic.Int64
	hc := &http.Client{Transport: &http.Transport{DialContext: dialPongDelayed(delay, &held)}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	go func() {
		for {
			if _, _, err := c.Read(ctx); err != nil { // answers the ping
				return
			}
		}
	}()
	time.Sleep(20 * time.Millisecond) // let the ping go first
	if err := c.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.rtt < delay {
		t.Errorf("ping round trip: got %v, want at least the %v the pong was held", res.rtt, delay)
	}
	if res.echo >= delay {
		t.Errorf("text frame: took %v, want less than %v: only pongs are held", res.echo, delay)
	}
	if held.Load() != 1 {
		t.Errorf("pongs held: got %d, want 1", held.Load())
	}
	c.Close(websocket.StatusNormalClosure, "")
}

type errString string

func (e errString) Error() string { return string(e) }
