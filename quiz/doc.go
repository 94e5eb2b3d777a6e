// Package quiz is Bulb's domain: quizzes and their questions, rooms and players, the
// room's state machine (lobby, open, live, closed), judging an answer, and the ranking and
// scoring rules of a first-come quiz.
//
// [Service] is the entry point. It owns no sockets and no HTTP: it reaches players through
// a [Broadcaster] and keeps state in a [Store], both small interfaces declared here and
// implemented elsewhere (the hub, the memory or Redis engine). Accepting an answer is one
// atomic [Store.Accept]: phase check, one answer per player, rank, points and score, so that
// ranks are unique and the winners exact however many answers race.
//
// All methods of [Service] and of [MemoryStore] are safe to call concurrently. Errors meant
// for users are of type [*Error] with one of the Code constants.
package quiz
