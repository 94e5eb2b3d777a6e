package hub

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the hub's Prometheus metrics.
type Metrics struct {
	connections prometheus.Gauge
	dropped     *prometheus.CounterVec
	starts      prometheus.Counter
	fanout      prometheus.Histogram
	startWrite  prometheus.Histogram
	busDelay    prometheus.Histogram
	clockError  prometheus.Histogram
	late        prometheus.Counter
}

// NewMetrics returns the hub's metrics, not yet registered.
func NewMetrics() *Metrics {
	latency := prometheus.ExponentialBuckets(1e-6, 4, 12) // 1 µs to 4 s
	return &Metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bulb_hub_connections", Help: "Open WebSocket connections.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulb_hub_dropped_total", Help: "Clients dropped, by reason (queue_full, write_failed, ping_timeout, too_big, flood, invalid_utf8).",
		}, []string{"reason"}),
		starts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bulb_hub_starts_total", Help: "Start signals fanned out.",
		}),
		fanout: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "bulb_hub_start_fanout_seconds", Help: "Time to enqueue one start for every player of a room.", Buckets: latency,
		}),
		startWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "bulb_hub_start_write_seconds", Help: "Per recipient, from enqueueing a start frame to its write returning.", Buckets: latency,
		}),
		busDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "bulb_hub_bus_delay_seconds", Help: "From a start's publish on the bus to this node's fan-out.", Buckets: latency,
		}),
		clockError: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "bulb_hub_client_clock_error_seconds", Help: "The error bound of a client's synced clock, as its seen reports say.", Buckets: latency,
		}),
		late: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bulb_hub_late_starts_total", Help: "Synced starts that reached a client after their reveal instant, as its seen reports say.",
		}),
	}
}

// Register registers the metrics with reg.
func (m *Metrics) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.connections, m.dropped, m.starts, m.fanout, m.startWrite, m.busDelay, m.clockError, m.late} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
