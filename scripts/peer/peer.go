package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/centrifugal/centrifuge"

	"github.com/bulbquiz/bulb/internal/clocksync"
	"github.com/bulbquiz/bulb/protocol"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "peer:", err)
	}
	if err != nil {
		os.Exit(2)
	}
}

// run serves until ctx ends, then disconnects every client. It prints the URL it serves
// on stdout once it listens.
func run(ctx context.Context, args []string, stdout, stderr *os.File) error {
	fs := flag.NewFlagSet("peer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8090", "listen address (loopback: a benchmark's peer)")
	channel := fs.String("channel", "room", "the one channel clients may subscribe to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("component", "peer")
	p, err := newPeer(*channel, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: p.handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "peer: serving http://%s (channel %q)\n", ln.Addr(), *channel)
	select {
	case err = <-served:
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The node first: it closes its (hijacked) WebSockets, which the server's Shutdown
	// does not wait for.
	return errors.Join(err, p.shutdown(shutCtx), srv.Shutdown(shutCtx))
}

// peer is a centrifuge node with one channel, its WebSocket endpoint and the calls that
// drive and watch it. Its methods are safe for concurrent use.
type peer struct {
	node    *centrifuge.Node
	channel string
	log     *slog.Logger
	seq     atomic.Uint64 // the last start's sequence number

	syncs, seen, acks, others atomic.Int64 // what the clients sent
}

// newPeer starts a centrifuge node (memory broker, the library's defaults) whose clients
// may subscribe to channel and nothing else, answer sync RPCs and send seen or ack
// messages.
func newPeer(channel string, log *slog.Logger) (*peer, error) {
	node, err := centrifuge.New(centrifuge.Config{
		LogLevel: centrifuge.LogLevelError,
		LogHandler: func(e centrifuge.LogEntry) {
			log.Error(e.Message, "fields", e.Fields)
		},
	})
	if err != nil {
		return nil, err
	}
	p := &peer{node: node, channel: channel, log: log}
	// Anyone may connect: a benchmark on loopback, whose clients give a name only.
	node.OnConnecting(func(_ context.Context, e centrifuge.ConnectEvent) (centrifuge.ConnectReply, error) {
		return centrifuge.ConnectReply{Credentials: &centrifuge.Credentials{UserID: e.Name}}, nil
	})
	node.OnConnect(func(c *centrifuge.Client) {
		c.OnSubscribe(func(e centrifuge.SubscribeEvent, cb centrifuge.SubscribeCallback) {
			if e.Channel != p.channel {
				cb(centrifuge.SubscribeReply{}, centrifuge.ErrorPermissionDenied)
				return
			}
			cb(centrifuge.SubscribeReply{}, nil)
		})
		c.OnRPC(func(e centrifuge.RPCEvent, cb centrifuge.RPCCallback) {
			reply, err := p.rpc(e.Method, e.Data)
			cb(centrifuge.RPCReply{Data: reply}, err)
		})
		c.OnMessage(func(e centrifuge.MessageEvent) { p.message(e.Data) })
	})
	if err := node.Run(); err != nil {
		return nil, err
	}
	return p, nil
}

// clientFrame holds the fields of a client's frame the peer reads: a Bulb frame, as
// scripts/loadgen sends it to Bulb, in a centrifuge RPC or message.
type clientFrame struct {
	Type string   `json:"type"`
	T0   *float64 `json:"t0"`
	Seq  *uint64  `json:"seq"`
}

// rpc answers the sync RPC as Bulb answers a sync frame: the client's t0 back, with the
// instants this node received it (t1) and answered it (t2), in ms since the Unix epoch.
// Bulb stamps t2 just before its write; here it is stamped before the reply is queued.
func (p *peer) rpc(method string, data []byte) ([]byte, error) {
	t1 := clocksync.Millis(time.Now())
	var f clientFrame
	if method != "sync" || json.Unmarshal(data, &f) != nil || f.T0 == nil {
		return nil, centrifuge.ErrorMethodNotFound
	}
	p.syncs.Add(1)
	return protocol.AppendSync(nil, *f.T0, t1, clocksync.Millis(time.Now())), nil
}

// message counts a client's seen or ack message; it is decoded, as Bulb decodes them,
// and otherwise dropped: the peer keeps no fairness record.
func (p *peer) message(data []byte) {
	var f clientFrame
	switch err := json.Unmarshal(data, &f); {
	case err == nil && f.Type == "seen" && f.Seq != nil:
		p.seen.Add(1)
	case err == nil && f.Type == "ack" && f.Seq != nil:
		p.acks.Add(1)
	default:
		p.others.Add(1)
	}
}

// start publishes the start frame of question n to the channel: the bytes of Bulb's
// immediate start (protocol.AppendStart, no reveal instant), the next sequence number.
// It returns once the node handed the publication to every subscriber's queue (the
// memory broker broadcasts on the caller's goroutine), with the number of subscribers.
func (p *peer) start(n int) (seq uint64, recipients int, err error) {
	seq = p.seq.Add(1)
	recipients = p.node.Hub().NumSubscribers(p.channel)
	_, err = p.node.Publish(p.channel, protocol.AppendStart(nil, n, seq, 0))
	return seq, recipients, err
}

// stats is what GET /stats reports.
type stats struct {
	Clients     int   `json:"clients"`
	Subscribers int   `json:"subscribers"`
	Syncs       int64 `json:"syncs"`
	Seen        int64 `json:"seen"`
	Acks        int64 `json:"acks"`
	Others      int64 `json:"others"`
}

// handler serves the WebSocket endpoint (/connection/websocket, as Centrifugo), POST
// /start?n=N, GET /stats and GET /healthz.
func (p *peer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /connection/websocket", centrifuge.NewWebsocketHandler(p.node, centrifuge.WebsocketConfig{
		CheckOrigin: func(*http.Request) bool { return true }, // loopback clients, no browser
	}))
	mux.HandleFunc("POST /start", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n < 1 {
			http.Error(w, `{"error":"n: want a question number from 1"}`, http.StatusBadRequest)
			return
		}
		seq, recipients, err := p.start(n)
		if err != nil {
			p.log.Error("publish", "err", err)
			http.Error(w, `{"error":"publish failed"}`, http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"seq":%d,"recipients":%d}`+"\n", seq, recipients)
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(stats{
			Clients: p.node.Hub().NumClients(), Subscribers: p.node.Hub().NumSubscribers(p.channel),
			Syncs: p.syncs.Load(), Seen: p.seen.Load(), Acks: p.acks.Load(), Others: p.others.Load(),
		})
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, `{"status":"ok"}`)
	})
	return mux
}

// shutdown disconnects every client and stops the node.
func (p *peer) shutdown(ctx context.Context) error { return p.node.Shutdown(ctx) }
