// Package wsclients is the client process of Bulb's fan-out measurements (the hub's
// BenchmarkBroadcast and scripts/fanout): many WebSocket clients in one process, apart
// from the server's, each with a reader goroutine that stamps every frame it receives,
// and the pipe on which that process reports the stamps to the measuring one.
//
// The measuring process starts the client process with Start (a re-execution of its own
// binary, or its test binary) and waits for AwaitReady; the client process calls Serve.
// Then, per frame sent to every client: AwaitDone, once every client has read it, and
// Receipts, their receipt times by client index. Stop hangs up and ends the process.
// The two share a clock through Config.Now, which the caller picks.
//
// Serve is meant to be called once per process. A Process belongs to one goroutine.
package wsclients
