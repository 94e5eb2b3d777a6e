// Command server runs a Bulb node: the HTTP API and WebSocket endpoint of
// docs/protocol.md, the browser pages, /healthz and /metrics, on the in-memory engine.
//
// It is the only package that wires: configuration from flags and environment, the
// store, the hub and the quiz service, the echo routes, and graceful shutdown. main calls
// run, which tests call too, on port 0.
package main
