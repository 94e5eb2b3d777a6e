// Package lagproxy puts TCP proxies that delay each direction in front of a server, for the
// latency measurements (scripts/fairness, scripts/reveal): Shopify's toxiproxy run as a
// library in the calling process, one proxy per link, with a latency toxic on each
// stream. Toxiproxy draws each chunk's delay uniformly from [delay−jitter, delay+jitter)
// in whole milliseconds and never reorders a connection's bytes.
//
// Start and Stop belong to one goroutine; Addr is safe to call concurrently.
package lagproxy

import (
	"fmt"
	"strings"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Delay is one direction's one-way delay, Ms ± JitterMs.
type Delay struct {
	Ms       int `json:"ms"`
	JitterMs int `json:"jitterMs"`
}

func (d Delay) String() string { return fmt.Sprintf("%d±%d ms", d.Ms, d.JitterMs) }

// Link is one proxy's delays: Down from the server to the client (toxiproxy's
// downstream), Up from the client to the server (upstream).
type Link struct {
	Down Delay `json:"down"`
	Up   Delay `json:"up"`
}

// Symmetric is the link that delays both directions by ms ± jitter.
func Symmetric(ms, jitter int) Link {
	return Link{Down: Delay{ms, jitter}, Up: Delay{ms, jitter}}
}

func (l Link) String() string {
	if l.Down == l.Up {
		return l.Down.String()
	}
	return l.Down.String() + " down, " + l.Up.String() + " up"
}

// Proxies are the running proxies, one per link.
type Proxies struct {
	list []*toxiproxy.Proxy
}

// Start starts one proxy per link on a free loopback port, each forwarding to target
// (host:port) with the link's delays.
func Start(target string, links []Link) (*Proxies, error) {
	tp := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	ps := &Proxies{}
	for i, l := range links {
		p := toxiproxy.NewProxy(tp, fmt.Sprintf("link-%d", i), "127.0.0.1:0", target)
		if err := p.Start(); err != nil {
			ps.Stop()
			return nil, fmt.Errorf("proxy for %s: %w", l, err)
		}
		ps.list = append(ps.list, p)
		for _, t := range []struct {
			stream string
			d      Delay
		}{{"downstream", l.Down}, {"upstream", l.Up}} {
			toxic := fmt.Sprintf(`{"name":"latency_%s","type":"latency","stream":%q,"attributes":{"latency":%d,"jitter":%d}}`,
				t.stream, t.stream, t.d.Ms, t.d.JitterMs)
			if _, err := p.Toxics.AddToxicJson(strings.NewReader(toxic)); err != nil {
				ps.Stop()
				return nil, fmt.Errorf("proxy for %s: %s toxic: %w", l, t.stream, err)
			}
		}
	}
	return ps, nil
}

// Addr is the listening address (host:port) of link i's proxy.
func (ps *Proxies) Addr(i int) string { return ps.list[i].Listen }

// Stop stops every proxy; their connections close.
func (ps *Proxies) Stop() {
	for _, p := range ps.list {
		p.Stop()
	}
}
