// Package quiz is Bulb's domain: quizzes and their questions, rooms and players, the
// room's state machine (lobby, open, live, closed), marking an answer, and the ranking and
// scoring rules of a first-come quiz.
//
// [Service] is the entry point. It owns no sockets and no HTTP: it reaches players through
// a [Broadcaster], the other nodes through [Nodes], code's judge through [Judge], and keeps
// state in a [Store] — small interfaces declared here and implemented elsewhere (the hub,
// the judge) or beside them (the engines: [MemoryStore], [BoltStore], [RedisStore]). Accepting an answer is one atomic
// [Store.Accept]: phase check, one answer per player, rank, points and score, so that
// ranks are unique and the winners exact however many answers race. The values a student
// is sent (an answer, a verdict, a leaderboard entry) are the protocol package's.
//
// The files follow the use cases: room.go (creating rooms, joining, locking, removing
// players, editing the quiz),
// phase.go (opening, starting and closing a question), schedule.go (timed starts and
// closes), answer.go (answers, code submissions, verdicts, ranking), view.go (what hosts
// and players are shown), name.go (which names may sit beside each other). store_redis*.go
// split the Redis engine into rooms, answers, expiry and encoding.
//
// The embedded engine, the default, is a [MemoryStore] whose changes a journal writes to a
// bbolt database before the call that made them returns (store_bolt*.go): the rooms are
// served from memory, a restart reads them back, and changes made at once share one
// commit and one flush to the disk (group commit).
//
// Rooms expire: [Service.Run] has the store delete every room quiet for Options.RoomTTL
// ([Store.Expire]), one node at a time under a [Locker] lease.
//
// All methods of [Service], of the stores and of the lockers are safe to call
// concurrently. Errors meant for users are of type [*Error], with a protocol.ErrorCode.
package quiz
