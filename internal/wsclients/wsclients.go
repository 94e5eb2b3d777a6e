package wsclients

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sync/errgroup"
)

// The client process's report lines. After done come the receipt times: eight bytes per
// client, little-endian, by client index.
const (
	ready = "ready\n"
	done  = "done\n"
)

// reportFD is the client process's end of the report pipe.
const reportFD = 3

// Config is what the client process dials and how it stamps receipts.
type Config struct {
	URL     string       // client i dials URL + strconv.Itoa(i)
	N       int          // clients
	Welcome string       // the first message every client reads: the server has registered it
	Now     func() int64 // the receipt stamp in ns, on a clock the measuring process shares
}

// Serve is the client process: it dials cfg.N clients, says ready on its report pipe
// (file descriptor 3), and after every frame that all of them have read reports done and
// their receipt times there. It hangs up when its stdin closes, and returns nil then.
func Serve(cfg Config) error {
	return serve(cfg, os.NewFile(reportFD, "report"), os.Stdin)
}

// serve is Serve reporting to report, until hangup ends.
func serve(cfg Config, report io.Writer, hangup io.Reader) error {
	n := cfg.N
	recv := make([]atomic.Int64, n)
	var pending atomic.Int64
	pending.Store(int64(n))
	all := make(chan struct{}, 1)
	conns := make([]*websocket.Conn, n)
	var readers sync.WaitGroup
	defer func() {
		for _, ws := range conns {
			if ws != nil {
				ws.CloseNow()
			}
		}
		readers.Wait()
	}()
	// Each client reads from its welcome on, while the others connect: a WebSocket client
	// answers the hub's pings (the first goes out on connect) only while it reads.
	var g errgroup.Group
	g.SetLimit(64)
	for i := range n {
		g.Go(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			ws, _, err := websocket.Dial(ctx, cfg.URL+strconv.Itoa(i), &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
			if err != nil {
				return fmt.Errorf("dial client %d: %w", i, err)
			}
			conns[i] = ws
			if _, got, err := ws.Read(ctx); err != nil || string(got) != cfg.Welcome {
				return fmt.Errorf("client %d welcome: got %q, %v, want %s", i, got, err, cfg.Welcome)
			}
			readers.Go(func() {
				for {
					// No context deadline: nothing to arm per read. CloseNow ends the loop.
					_, r, err := ws.Reader(context.Background())
					if err != nil {
						return
					}
					if _, err := io.Copy(io.Discard, r); err != nil {
						return
					}
					recv[i].Store(cfg.Now())
					if pending.Add(-1) == 0 {
						all <- struct{}{}
					}
				}
			})
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}

	reported := make(chan error, 1)
	go func() {
		buf := make([]byte, 8*n)
		for range all {
			pending.Store(int64(n)) // before the measuring process can send the next frame
			for i := range recv {
				binary.LittleEndian.PutUint64(buf[8*i:], uint64(recv[i].Load()))
			}
			if _, err := io.WriteString(report, done); err != nil {
				reported <- err
				return
			}
			if _, err := report.Write(buf); err != nil {
				reported <- err
				return
			}
		}
	}()
	if _, err := io.WriteString(report, ready); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	io.Copy(io.Discard, hangup) // until the measuring process hangs up
	for _, ws := range conns {
		ws.CloseNow()
	}
	readers.Wait()
	close(all)
	select {
	case err := <-reported:
		if !errors.Is(err, syscall.EPIPE) { // the measuring process may be gone already
			return fmt.Errorf("report: %w", err)
		}
	default:
	}
	return nil
}
