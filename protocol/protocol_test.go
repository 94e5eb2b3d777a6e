package protocol

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
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
	return []ServerFrame{
		WelcomeFrame{PlayerID: "p1", Name: "ada", Room: "482913", Role: "player", Phase: "open", Current: 2, Question: &q, Answered: &r,
			Submissions: []ResultFrame{r}, Verdicts: []VerdictFrame{v}},
		q, StartFrame{N: 2, Seq: 7}, CloseFrame{N: 2}, r, v,
		LeaderboardFrame{Entries: []Entry{{PlayerID: "p1", Name: "ada", Score: 100, Rank: 1}}, Players: 1},
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
	for _, f := range []StartFrame{{1, 1}, {200, 18446744073709551615}, {0, 0}, {-3, 42}} {
		if got, want := string(AppendStart([]byte("x"), f.N, f.Seq)), "x"+string(Encode(f)); got != want {
			t.Errorf("AppendStart(%d, %d): got %s, want %s", f.N, f.Seq, got, want)
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
		{data: `{"type":"ack"}`, wantErr: "an ack needs the start's seq, a whole number"},
		{data: `{"type":"ack","seq":-1}`, wantErr: "an ack needs the start's seq, a whole number"},
		{data: `{"type":"ack","seq":1.5}`, wantErr: "an ack needs the start's seq, a whole number"},
		{data: `{"type":"ack","seq":"1"}`, wantErr: "an ack needs the start's seq, a whole number"},
		{data: `{"type":"ack","seq":null}`, wantErr: "an ack needs the start's seq, a whole number"},
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

// FuzzDecodeClient: any bytes decode to an answer or an ack, or to an error; never a panic.
func FuzzDecodeClient(f *testing.F) {
	for _, seed := range []string{`{"type":"answer","n":1,"choice":2}`, `{"type":"ack","seq":1}`, `{"type":"ack"}`, `{}`, "\xff", `{"type":"answer","code":"\u0000"}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeClient(data)
		if err == nil && got.Type != TypeAnswer && got.Type != TypeAck {
			t.Fatalf("%q: got type %q and no error, want an answer, an ack or an error", data, got.Type)
		}
	})
}

// TestMirrorsDocs: the error codes and the server frames of docs/protocol.md are those of
// this package, in the same order.
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
	if got := names(section("### Client → server", "### Close codes")); !slices.Equal(got, []string{TypeAnswer, TypeAck}) {
		t.Errorf("client frames in docs/protocol.md: got %v, want answer, ack", got)
	}
}
