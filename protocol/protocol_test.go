package protocol

import (
	"encoding/json"
	"math"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// everyFrame is one of each server frame, with the fields that matter set.
func everyFrame() []ServerFrame {
	at := time.Date(2026, 11, 23, 6, 0, 0, 123456789, time.UTC)
	q := QuestionFrame{N: 2, Kind: "choice", Text: "Which layer?", Choices: []string{"3", "4"}, TimeLimitMs: 20000, Phase: "open", StartAt: &at}
	r := ResultFrame{N: 2, Accepted: true, Correct: true, Rank: 1, Points: 100}
	v := VerdictFrame{N: 1, Submission: 3, Language: "c", Verdict: Verdict{Verdict: AC, Passed: 2, Total: 2}}
	e := Entry{PlayerID: "p1", Name: "ada", Score: 100, Rank: 1}
	return []ServerFrame{
		WelcomeFrame{PlayerID: "p1", Name: "ada", Room: "482913", Role: "player", Phase: "open", Current: 2, Question: &q, Answered: &r,
			Submissions: []ResultFrame{r}, Verdicts: []VerdictFrame{v}},
		q, TimerFrame{N: 2, EndsAt: 1765000020123.5}, StartFrame{N: 2, Seq: 7, At: 1765000000123.5}, SyncFrame{T0: 1, T1: 2, T2: 3}, CloseFrame{N: 2}, r, v,
		RevealFrame{N: 2, Kind: "choice", Answer: new(int), Counts: []int{1, 2}, Answered: 3, Correct: 1,
			Fastest: []Fastest{{Name: "ada", Rank: 1, Points: 100, ElapsedUs: 812345}}},
		LeaderboardFrame{Entries: []Entry{e}, Players: 1},
		StandingFrame{N: 2, Answered: true, Correct: true, Rank: 1, Points: 100, Score: 100, Place: 1, Players: 1},
		FinishedFrame{Podium: []Entry{e}, Players: 1},
		TallyFrame{N: 2, Answers: 3},
		DeletedFrame{Message: "the room was deleted"},
		ErrorFrame{Code: Closed, Message: "question 2 is closed", N: 2},
		AnsweredFrame{Answer: Answer{N: 2, PlayerID: "p1", Name: "ada", Response: Response{Choice: new(int)}, ReceivedAt: at}},
		JoinedFrame{PlayerID: "p1", Name: "ada"},
		LeftFrame{PlayerID: "p1", Name: "ada"},
		RemovedFrame{Message: "the host removed you from the room"},
	}
}

// TestEncodeTypeFirst: every frame is a JSON object whose first member is its type, and
// the frames nested in a welcome carry their types too.
func TestEncodeTypeFirst(t *testing.T) {
	for _, f := range everyFrame() {
		b := Encode(f)
		if want := `{"type":"` + f.FrameType() + `"`; !strings.HasPrefix(string(b), want) {
			t.Errorf("%T: got %s, want it to begin %s", f, b, want)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil || m["type"] != f.FrameType() {
			t.Errorf("%T: got %s (%v), want an object of type %q", f, b, err, f.FrameType())
		}
	}
	w := string(Encode(everyFrame()[0]))
	for _, nested := range []string{`"question":{"type":"question"`, `"answered":{"type":"result"`,
		`"submissions":[{"type":"result"`, `"verdicts":[{"type":"verdict","n":1,"submission":3,"language":"c","verdict":"AC"`} {
		if !strings.Contains(w, nested) {
			t.Errorf("welcome: got %s, want it to contain %s", w, nested)
		}
	}
	if got, want := string(Encode(CloseFrame{})), `{"type":"close","n":0}`; got != want {
		t.Errorf("close: got %s, want %s", got, want)
	}
}

// TestAppendStart: the hand-written start frame is the encoded StartFrame, byte for byte.
func TestAppendStart(t *testing.T) {
	for _, f := range []StartFrame{{1, 1, 0}, {200, 18446744073709551615, 0}, {0, 0, 0}, {-3, 42, 0},
		{7, 9, 1765000000123.456}, {7, 9, 1765000000123}, {7, 9, 1765000000123.0005}} {
		if got, want := string(AppendStart([]byte("x"), f.N, f.Seq, f.At)), "x"+string(Encode(f)); got != want {
			t.Errorf("AppendStart(%d, %d, %v): got %s, want %s", f.N, f.Seq, f.At, got, want)
		}
	}
	for _, f := range []SyncFrame{{1765000000000.25, 1765000004321.125, 1765000004321.5}, {0, 1, 2}, {-5.5, 1e15, 123.456789}} {
		if got, want := string(AppendSync(nil, f.T0, f.T1, f.T2)), string(Encode(f)); got != want {
			t.Errorf("AppendSync(%v): got %s, want %s", f, got, want)
		}
	}
}

func TestDecodeClient(t *testing.T) {
	two := 2
	for _, tt := range []struct {
		data    string
		want    ClientFrame
		wantErr string
	}{
		{data: `{"type":"answer","n":1,"choice":2}`, want: ClientFrame{Type: TypeAnswer, N: 1, Response: Response{Choice: &two}}},
		{data: `{"type":"answer","n":3,"language":"c","code":"int main(){}"}`, want: ClientFrame{Type: TypeAnswer, N: 3, Response: Response{Language: "c", Source: "int main(){}"}}},
		{data: `{"seq":18446744073709551615,"type":"ack"}`, want: ClientFrame{Type: TypeAck, Seq: 18446744073709551615}},
		{data: `{"type":"ack","seq":7,"n":2}`, want: ClientFrame{Type: TypeAck, Seq: 7, N: 2}},
		{data: `{"type":"ack"}`, wantErr: "ack: a start's seq, a whole number, is needed"},
		{data: `{"type":"ack","seq":-1}`, wantErr: "ack: a start's seq, a whole number, is needed"},
		{data: `{"type":"ack","seq":1.5}`, wantErr: "ack: a start's seq, a whole number, is needed"},
		{data: `{"type":"ack","seq":"1"}`, wantErr: "ack: a start's seq, a whole number, is needed"},
		{data: `{"type":"ack","seq":null}`, wantErr: "ack: a start's seq, a whole number, is needed"},
		{data: `{"type":"sync","t0":1765000000000.125}`, want: ClientFrame{Type: TypeSync, T0: 1765000000000.125}},
		{data: `{"type":"sync"}`, wantErr: "a sync needs t0, the client's send time in ms"},
		{data: `{"type":"sync","t0":"now"}`, wantErr: "malformed JSON frame"},
		{data: `{"type":"seen","seq":4,"receivedAt":1765000000100.5,"revealedAt":1765000000300,"errorMs":1.25,"late":true}`,
			want: ClientFrame{Type: TypeSeen, Seq: 4, Seen: Seen{ReceivedAt: 1765000000100.5, RevealedAt: 1765000000300, ErrorMs: 1.25, Late: true}}},
		{data: `{"type":"seen","seq":4,"receivedAt":0,"revealedAt":1,"errorMs":1}`, wantErr: errSeenTimes.Error()},
		{data: `{"type":"seen","seq":4,"receivedAt":1e300,"revealedAt":1e-300,"errorMs":1e300,"offsetMs":-1e300}`, wantErr: errSeenTimes.Error()},
		{data: `{"type":"seen","seq":4,"receivedAt":1765000000100,"revealedAt":1765000000300,"errorMs":10001}`, wantErr: errSeenTimes.Error()},
		{data: `{"type":"seen","seq":4,"receivedAt":1765000000100,"revealedAt":1765000000300,"errorMs":1,"offsetMs":-2e14}`, wantErr: errSeenTimes.Error()},
		{data: `{"type":"seen","receivedAt":1,"revealedAt":1,"errorMs":1}`, wantErr: "seen: a start's seq, a whole number, is needed"},
		{data: `{"type":"hello"}`, wantErr: `unknown frame type "hello"`},
		{data: `{}`, wantErr: `unknown frame type ""`},
		{data: `not json`, wantErr: "malformed JSON frame"},
		{data: `null`, wantErr: `unknown frame type ""`},
		{data: `{"type":"answer","n":1e99}`, wantErr: "malformed JSON frame"},
		{data: `[1,2]`, wantErr: "malformed JSON frame"},
	} {
		got, err := DecodeClient([]byte(tt.data))
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("%s: got %+v, %v; want error %q", tt.data, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %+v, %v; want %+v", tt.data, got, err, tt.want)
		}
	}
}

// FuzzDecodeClient: any bytes decode to a well-formed client frame, or to an error; never a
// panic.
func FuzzDecodeClient(f *testing.F) {
	for _, seed := range []string{`{"type":"answer","n":1,"choice":2}`, `{"type":"ack","seq":1}`, `{"type":"ack"}`, `{}`, "\xff", `{"type":"answer","code":"\u0000"}`,
		`{"type":"sync","t0":1765000000000.5}`, `{"type":"sync","t0":1e400}`, `{"type":"seen","seq":3,"receivedAt":1,"revealedAt":2,"errorMs":0.5,"late":false}`,
		`{"type":"seen","seq":3,"receivedAt":-1,"revealedAt":2,"errorMs":0}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeClient(data)
		if err != nil {
			return
		}
		switch got.Type {
		case TypeAnswer, TypeAck:
		case TypeSync:
			if math.IsInf(got.T0, 0) || math.IsNaN(got.T0) {
				t.Fatalf("%q: a sync with t0 %v", data, got.T0)
			}
		case TypeSeen:
			if sn := got.Seen; !(sn.ReceivedAt > 0 && sn.ReceivedAt < MaxSeenTime && sn.RevealedAt > 0 && sn.RevealedAt < MaxSeenTime &&
				sn.ErrorMs >= 0 && sn.ErrorMs <= MaxSeenErrorMs && math.Abs(sn.OffsetMs) <= MaxSeenTime) {
				t.Fatalf("%q: a seen with %+v", data, got.Seen)
			}
		default:
			t.Fatalf("%q: got type %q and no error, want a client frame or an error", data, got.Type)
		}
	})
}

// TestMirrorsDocs: the error codes, the frames and the close codes of docs/protocol.md are
// those of this package, in the same order.
func TestMirrorsDocs(t *testing.T) {
	doc, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	section := func(from, to string) string {
		s := string(doc)
		i := strings.Index(s, from)
		j := strings.Index(s[i+1:], to)
		if i < 0 || j < 0 {
			t.Fatalf("docs/protocol.md: no section from %q to %q", from, to)
		}
		return s[i : i+1+j]
	}
	row := regexp.MustCompile("(?m)^\\s*\\| `([a-z_]+)` \\|")
	names := func(s string) []string {
		var out []string
		for _, m := range row.FindAllStringSubmatch(s, -1) {
			out = append(out, m[1])
		}
		return out
	}
	var codes []string
	for _, c := range ErrorCodes {
		codes = append(codes, string(c))
	}
	if got := names(section("## Conventions", "## Roles")); !slices.Equal(got, codes) {
		t.Errorf("error codes in docs/protocol.md: got %v, want %v", got, codes)
	}
	var types []string
	for _, f := range everyFrame() {
		types = append(types, f.FrameType())
	}
	if got := names(section("### Server → client", "### Client → server")); !slices.Equal(got, types) {
		t.Errorf("server frames in docs/protocol.md: got %v, want %v", got, types)
	}
	if got, want := names(section("### Client → server", "### Close codes")), []string{TypeAnswer, TypeSync, TypeSeen, TypeAck}; !slices.Equal(got, want) {
		t.Errorf("client frames in docs/protocol.md: got %v, want %v", got, want)
	}
	var closeCodes []string
	for _, c := range CloseCodes {
		closeCodes = append(closeCodes, strconv.Itoa(int(c)))
	}
	var got []string
	closeRow := regexp.MustCompile(`(?m)^\| ([0-9]{4})\b`)
	for _, m := range closeRow.FindAllStringSubmatch(section("### Close codes", "## Limits"), -1) {
		got = append(got, m[1])
	}
	if !slices.Equal(got, closeCodes) {
		t.Errorf("close codes in docs/protocol.md: got %v, want %v", got, closeCodes)
	}
}
