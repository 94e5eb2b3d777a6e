// Command server runs a Bulb node: the HTTP API and WebSocket endpoint of
// docs/protocol.md, the browser pages, /healthz and /metrics, on the embedded engine (the
// default: its data directory survives restarts), the in-memory engine or as one node of
// many on Redis, and the judge of code answers (or, with --role judge, only the judge).
//
// It is the only package that wires: configuration from flags and environment, the
// engine (engine.go: the store, the data directory and its admin token), the hub and the
// quiz service, the echo routes, and graceful shutdown. main calls run, which tests call
// too, on port 0.
package main
