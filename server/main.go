package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/bulbquiz/bulb/hub"
	"github.com/bulbquiz/bulb/internal/fds"
	"github.com/bulbquiz/bulb/quiz"
)

func main() {
	// A descriptor this process inherited without close-on-exec (a shell's, a supervisor's)
	// must reach no program it starts, least of all a submission in the sandbox.
	if err := fds.CloseOnExec(); err != nil {
		fmt.Fprintln(os.Stderr, "bulb: marking inherited descriptors close-on-exec:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// go-redis's own messages (failed dials, say) to slog; its logger is the process's,
	// so it is set here, once, rather than in run.
	redis.SetLogger(redisLogger{slog.New(slog.NewTextHandler(os.Stdout, nil)).With("component", "redis")})
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bulb:", err)
		os.Exit(1)
	}
}

// shutdownTimeout bounds a graceful shutdown.
const shutdownTimeout = 10 * time.Second

// maxHeaderBytes bounds a request's header (net/http's default is 1 MiB): Bulb's own are
// small, and 32 KiB leaves room for the cookies of other sites on the same domain, as
// nginx's default does.
const maxHeaderBytes = 32 << 10

// run runs a Bulb node until ctx is done. It prints the URL it serves and, if none was
// configured, the generated admin token on stdout; logs go there too.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := parseConfig(args, getenv, stdout)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	hubMetrics := hub.NewMetrics()
	if err := hubMetrics.Register(reg); err != nil {
		return err
	}
	eng, err := newEngine(cfg, log)
	if err != nil {
		return err
	}
	defer eng.close()
	for _, c := range eng.metrics {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	h := hub.New(hub.Options{
		QueueSize:    cfg.QueueSize,
		WriteTimeout: cfg.WriteTimeout,
		PingInterval: cfg.PingInterval,
		PingTimeout:  max(3*cfg.PingInterval, 10*time.Second), // a busy client or machine is not a dead one
		Logger:       log,
		Metrics:      hubMetrics,
		Bus:          eng.bus,
		Archive:      eng.archive,
		Node:         cfg.Node,
	})
	jd, err := newJudging(cfg, eng, log)
	if err != nil {
		return err
	}
	svc := quiz.NewService(quiz.Options{Store: eng.store, Broadcaster: h, Nodes: h, Locker: eng.locker, Judge: jd.judge, Logger: log,
		RoomTTL: cfg.RoomTTL})
	if cfg.Role == roleJudge {
		// No HTTP and no sockets: it judges, records verdicts and sends their frames to
		// the nodes through the bus.
		fmt.Fprintf(stdout, "Bulb judge running (%s)\n", eng.name)
		if jd.run == nil {
			return errors.New("this process cannot judge")
		}
		return jd.run(ctx, recordVerdict(svc))
	}

	adminToken, where, err := adminToken(cfg, eng.data)
	if err != nil {
		return err
	}
	if where != "" {
		fmt.Fprintf(stdout, "admin token: %s (%s)\n", adminToken, where)
	}
	if jd.boxes != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "bulb_judge_boxes_broken", Help: "Sandbox boxes out of the pool because they could not be made clean: alert on any.",
		}, func() float64 { return float64(len(jd.boxes.Broken())) }))
	}
	lim := newLimits(cfg)
	if err := reg.Register(lim.refused); err != nil {
		return err
	}
	srv, err := newServer(svc, h, eng.health, adminToken, lim, reg, log)
	if err != nil {
		return err
	}

	ln, err := listen(cfg, reg, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Bulb listening on %s (%s)\n", baseURL(ln.Addr()), eng.name)
	if eng.resubmit {
		resubmitWaiting(ctx, svc, log)
	}
	// Every phase of a request is bounded, so that a slow client holds its connection for
	// a while at most: net/http clears these deadlines when it hands a WebSocket over.
	httpSrv := &http.Server{Handler: srv, ReadHeaderTimeout: cfg.HeaderTimeout, ReadTimeout: cfg.ReadTimeout,
		IdleTimeout: cfg.IdleTimeout, MaxHeaderBytes: maxHeaderBytes}
	return serve(ctx, ln, httpSrv, svc, h, jd, log)
}

// listen opens the listener on cfg.Addr, capped to cfg.ConnsPerAddr connections per client
// address if that is set.
func listen(cfg config, reg *prometheus.Registry, log *slog.Logger) (net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil || cfg.ConnsPerAddr <= 0 {
		return ln, err
	}
	capped := newCapListener(ln, cfg.ConnsPerAddr, cfg.TrustedProxies, log)
	if err := reg.Register(capped.refused); err != nil {
		ln.Close()
		return nil, err
	}
	return capped, nil
}

// resubmitWaiting submits again the code submissions that have no verdict: the judge's
// queue did not survive the restart; the submissions did.
func resubmitWaiting(ctx context.Context, svc *quiz.Service, log *slog.Logger) {
	if n, err := svc.Resubmit(ctx); err != nil {
		log.Error("submitting the waiting code submissions again", "err", err)
	} else if n > 0 {
		log.Info("code submissions without a verdict submitted again", "submissions", n)
	}
}

// serve runs the node until ctx is done: the service's timers and sweeps, the hub's bus
// and archive, the judge's workers if this process judges, and HTTP on ln; then it shuts
// HTTP and the hub down, within shutdownTimeout.
func serve(ctx context.Context, ln net.Listener, httpSrv *http.Server, svc *quiz.Service, h *hub.Hub, jd *judging, log *slog.Logger) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return svc.Run(ctx) })
	g.Go(func() error { return h.Run(ctx) })
	if jd.run != nil {
		g.Go(func() error { return jd.run(ctx, recordVerdict(svc)) })
	}
	g.Go(func() error {
		if err := httpSrv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		// http.Server.Shutdown leaves hijacked WebSockets alone: the hub closes its own.
		err := errors.Join(httpSrv.Shutdown(sctx), h.Shutdown(sctx))
		log.Info("stopped")
		return err
	})
	return g.Wait()
}

// baseURL is the URL a browser on this machine reaches addr at.
func baseURL(addr net.Addr) string {
	tcp := addr.(*net.TCPAddr)
	if tcp.IP.IsUnspecified() {
		return fmt.Sprintf("http://localhost:%d/", tcp.Port)
	}
	return "http://" + tcp.String() + "/"
}
