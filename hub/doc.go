// Package hub holds the WebSocket connections of Bulb's rooms and delivers frames to them.
//
// Every connection has a bounded queue of frames and a second, small queue for start
// frames, which its writer always serves first, so a start never waits behind a backlog.
// A writer is one of the hub's writer goroutines: it takes a connection while frames wait,
// one connection at a time, and a connection never waits for a writer busy elsewhere (a
// new one starts); idle writers wait a while for work, then end.
// [Hub.Start] lights the bulb of a room: it encodes the start frame once, takes the room's
// players in a fresh random order, splits them into shards and enqueues them concurrently
// through an errgroup, recording for every recipient when the frame was enqueued, when its
// write returned and when the client acknowledged it. A client whose queue is full, whose
// write times out or that stops answering pings is dropped with close code 1008; it never
// delays anyone else. [Hub.Remove] sends a player a last frame and closes its connection
// with 4001, on whichever node holds it. [Hub.Fairness] turns the records into
// per-start latency statistics and a per-player bias test. A room's records (its last
// Options.History starts) stay after its last connection left, for the report read after
// the quiz, until [Hub.Forget] (the room was deleted or expired) drops them on every node;
// a room with no connection and no start is dropped at once.
//
// The reading side of a connection runs in the goroutine that calls [Hub.Serve], or, after
// [Hub.Attach], in one of the hub's own. It counts each frame against the connection's rate
// (Options.FrameRate and FrameBurst: a frame past it is refused unread, and a client that
// keeps sending is dropped with 1008), closes the socket with 1007 on a text frame that is
// not UTF-8, decodes each frame once (protocol.DecodeClient), records acks itself, refuses
// malformed frames with an error frame, and hands the others to the connection's
// [Handler], which may ask the [Conn] what it knows of a start ([Conn.Delivery]). An idle
// connection holds that one goroutine. A server attaches the connections it upgrades with
// [Accept], whose buffers are smaller than net/http's, so that each costs little memory
// while it waits.
//
// With a [Bus] the hub is one node of many: frames and starts reach every node's
// connections, and [Hub.Notify] and [Hub.Survey] carry any component's messages by topic
// (the quiz's schedules; the hub's own presence and fairness surveys).
//
// All methods of [Hub] and [Conn] are safe to call concurrently.
package hub
