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
	"golang.org/x/sync/errgroup"

	"github.com/bulbquiz/bulb/hub"
	"github.com/bulbquiz/bulb/quiz"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bulb:", err)
		os.Exit(1)
	}
}

// shutdownTimeout bounds a graceful shutdown.
const shutdownTimeout = 10 * time.Second

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
	h := hub.New(hub.Options{
		QueueSize:    cfg.QueueSize,
		WriteTimeout: cfg.WriteTimeout,
		PingInterval: cfg.PingInterval,
		PingTimeout:  3 * cfg.PingInterval,
		Logger:       log,
		Metrics:      hubMetrics,
	})
	svc := quiz.NewService(quiz.NewMemoryStore(), h, log)

	adminToken := cfg.AdminToken
	if adminToken == "" {
		adminToken = quiz.Token()
		fmt.Fprintf(stdout, "admin token: %s\n", adminToken)
	}
	srv, err := newServer(svc, h, adminToken, reg, log)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Bulb listening on %s (in-memory engine)\n", baseURL(ln.Addr()))

	httpSrv := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return svc.Run(ctx) })
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
