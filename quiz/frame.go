package quiz

import "github.com/bulbquiz/bulb/protocol"

// The frames the service builds from its rooms and answers; the hub builds the start
// frame. protocol has their shapes and encoding.

func questionFrameOf(r *Room) protocol.QuestionFrame {
	q := r.Quiz.Questions[r.Current-1]
	f := protocol.QuestionFrame{N: r.Current, Kind: q.Kind, Text: q.Text, Choices: q.Choices, TimeLimitMs: q.TimeLimitMs,
		Phase: string(r.Phase), Languages: q.Languages, MemoryLimitMB: q.MemoryLimitMB}
	if !r.StartAt.IsZero() {
		at := r.StartAt.UTC()
		f.StartAt = &at
	}
	return f
}

func resultFrameOf(a protocol.Answer) protocol.ResultFrame {
	f := protocol.ResultFrame{N: a.N, Accepted: true, Correct: a.Correct, Rank: a.Rank, Points: a.Points, Pending: a.Pending}
	if a.Response.Language != "" { // a code submission
		f.Submission, f.Judging, f.Language = a.ArrivalRank, a.Verdict == nil, a.Response.Language
	}
	return f
}

// verdictFrameOf returns the verdict frame of a code submission a that has its verdict.
func verdictFrameOf(a protocol.Answer) protocol.VerdictFrame {
	return protocol.VerdictFrame{N: a.N, Submission: a.ArrivalRank, Language: a.Response.Language, Verdict: *a.Verdict}
}

// ResultFrame returns the result frame that tells a player its answer a was accepted.
func ResultFrame(a protocol.Answer) []byte { return protocol.Encode(resultFrameOf(a)) }
