// Command peer is the peer of Bulb's end-to-end benchmark (scripts/bench.sh e2e): a
// minimal broadcast server on github.com/centrifugal/centrifuge, the library at the core
// of Centrifugo, serving the same clients (scripts/loadgen --protocol centrifuge) the
// same start frame as Bulb's immediate start, byte for byte (protocol.AppendStart), so
// that Bulb's receipt latency can be set beside that of a mature real-time server's in
// one run, on one machine.
//
//	go run ./scripts/peer --addr 127.0.0.1:8090
//	go run ./scripts/loadgen --protocol centrifuge --url http://127.0.0.1:8090 --room room --clients 1000
//	curl -X POST 'http://127.0.0.1:8090/start?n=1'
//
// The clients speak centrifuge's own JSON protocol over WebSocket at
// /connection/websocket: a connect and a subscribe to the one channel (--channel), as
// Centrifugo's SDKs do; the clock sync of the page is an RPC ("sync", answered as Bulb
// answers a sync frame), its seen and ack reports are asynchronous messages, decoded and
// counted. A start is a publication to the channel, whose data is Bulb's start frame;
// POST /start?n=N publishes one and answers {"seq","recipients"} once the node has handed
// it to every subscriber's queue. GET /stats gives the number of clients and subscribers
// and the counts of what they sent.
//
// The node runs with the library's defaults: the memory broker, no history, no presence,
// JSON, the WebSocket transport's default buffers and the server's application-level
// pings. It serves loopback benchmarks only: anyone may connect, under any name.
package main
