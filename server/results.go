package main

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/bulbquiz/bulb/protocol"
	"github.com/bulbquiz/bulb/quiz"
)

// Results export: GET /api/rooms/{code}/results.csv and results.json (host or admin), a
// row per player per question asked and the final leaderboard, for a teacher's gradebook.

// resultRow is one row of the export, as JSON.
type resultRow struct {
	N           int    `json:"n"`
	PlayerID    string `json:"playerId"`
	Name        string `json:"name"`
	Answered    bool   `json:"answered"`
	Answer      string `json:"answer"` // for people: "B: Transport", the text, or "Python 3: AC"
	Correct     bool   `json:"correct"`
	FalseStart  bool   `json:"falseStart,omitempty"`
	Rank        int    `json:"rank"`
	Points      int    `json:"points"`
	ElapsedUs   int64  `json:"elapsedUs"`             // from the start (the reveal instant) to the answer
	Submissions int    `json:"submissions,omitempty"` // code questions
}

type resultQuestion struct {
	N    int    `json:"n"`
	Kind string `json:"kind"`
	Text string `json:"text"`
}

type resultsView struct {
	Room        string           `json:"room"`
	Title       string           `json:"title"`
	Questions   []resultQuestion `json:"questions"`
	Rows        []resultRow      `json:"rows"`
	Leaderboard []protocol.Entry `json:"leaderboard"`
}

func (s *server) results(c echo.Context) (resultsView, error) {
	if _, err := s.authorize(c, quiz.RoleHost); err != nil {
		return resultsView{}, err
	}
	res, err := s.svc.Results(c.Request().Context(), c.Param("room"))
	if err != nil {
		return resultsView{}, err
	}
	v := resultsView{Room: res.Code, Title: res.Title, Questions: make([]resultQuestion, len(res.Questions)),
		Rows: make([]resultRow, len(res.Rows)), Leaderboard: res.Leaderboard}
	for i, q := range res.Questions {
		v.Questions[i] = resultQuestion{N: i + 1, Kind: q.Kind, Text: q.Text}
	}
	for i, r := range res.Rows {
		a := r.Answer
		v.Rows[i] = resultRow{N: r.N, PlayerID: r.PlayerID, Name: r.Name, Answered: r.Answered, Correct: a.Correct || a.Rank > 0,
			FalseStart: a.FalseStart, Rank: a.Rank, Points: a.Points, ElapsedUs: a.ElapsedUs, Submissions: r.Submissions}
		if r.Answered {
			v.Rows[i].Answer = answerText(res.Questions[r.N-1], a)
		}
	}
	return v, nil
}

// answerText shows an answer as a person reads it.
func answerText(q quiz.Question, a protocol.Answer) string {
	switch {
	case a.Response.Choice != nil:
		i := *a.Response.Choice
		if i >= 0 && i < len(q.Choices) {
			return fmt.Sprintf("%c: %s", 'A'+i, q.Choices[i])
		}
		return strconv.Itoa(i)
	case a.Response.Language != "":
		v := "judging"
		if a.Verdict != nil {
			v = a.Verdict.Verdict
		}
		return a.Response.Language + ": " + v
	}
	return a.Response.Text
}

func (s *server) resultsJSON(c echo.Context) error {
	v, err := s.results(c)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="bulb-%s-results.json"`, v.Room))
	return c.JSON(http.StatusOK, v)
}

// utf8BOM starts the CSV file: without it Excel reads UTF-8 as the machine's legacy code
// page, and Korean, Greek or accented names come out garbled.
const utf8BOM = "\uFEFF"

func (s *server) resultsCSV(c echo.Context) error {
	v, err := s.results(c)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.WriteString(utf8BOM)
	w := csv.NewWriter(&buf)
	w.UseCRLF = true // what spreadsheets expect (RFC 4180)
	rows := [][]string{{"question", "question text", "player", "answer", "correct", "rank", "points", "seconds from start", "submissions"}}
	for _, r := range v.Rows {
		secs, correct, rank, subs := "", "", "", ""
		if r.Answered {
			secs = strconv.FormatFloat(float64(r.ElapsedUs)/1e6, 'f', 3, 64)
			correct = "no"
			if r.Correct {
				correct = "yes"
			} else if r.FalseStart {
				correct = "no (false start)"
			}
			if r.Rank > 0 {
				rank = strconv.Itoa(r.Rank)
			}
		}
		if r.Submissions > 0 {
			subs = strconv.Itoa(r.Submissions)
		}
		rows = append(rows, []string{strconv.Itoa(r.N), cell(v.Questions[r.N-1].Text), cell(r.Name), cell(r.Answer), correct, rank,
			strconv.Itoa(r.Points), secs, subs})
	}
	rows = append(rows, nil, []string{"place", "player", "score"})
	for _, e := range v.Leaderboard {
		rows = append(rows, []string{strconv.Itoa(e.Rank), cell(e.Name), strconv.Itoa(e.Score)})
	}
	for _, row := range rows {
		if err := w.Write(row); err != nil {
			return err
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	c.Response().Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="bulb-%s-results.csv"`, v.Room))
	return c.Blob(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
}

// cell makes text a student chose safe in a spreadsheet: a cell that begins with =, +, -,
// @, a tab or a carriage return is a formula to Excel and LibreOffice (CSV injection), so
// it gets a leading apostrophe, which shows it as text.
func cell(text string) string {
	if text != "" && strings.ContainsRune("=+-@\t\r", rune(text[0])) {
		return "'" + text
	}
	return text
}
