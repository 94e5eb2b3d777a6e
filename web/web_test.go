package web

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// The server serves every file of FS under /static/: each page must only
// load files that are there.
func TestPagesLoadEmbeddedFiles(t *testing.T) {
	ref := regexp.MustCompile(`(?:src|href)="/static/([^"]+)"|from '/static/([^']+)'`)
	// imports span lines: from '…' may stand on a line of its own
	for _, page := range []string{"index.html", "host.html", "admin.html", "present.html", "student.js", "host.js", "admin.js", "present.js", "sound.js", "editor.js", "student_code.js"} {
		b, err := fs.ReadFile(FS, page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ref.FindAllStringSubmatch(string(b), -1) {
			name := m[1] + m[2]
			if _, err := fs.Stat(FS, name); err != nil {
				t.Errorf("%s loads /static/%s, which is not in FS", page, name)
			}
		}
	}
}

// Tests drive the pages by these ids.
func TestPagesHaveIDs(t *testing.T) {
	ids := map[string]string{
		"index.html":   "code name join status question bulb choices text-answer submit-text result standing leaderboard leave leave-dialog leave-confirm sound countdown announce podium language code-editor submit-code submissions",
		"host.html":    "admin-token quiz-json create room-code questions phase players answers leaderboard error edit-quiz edit-json save-quiz edit-status sample-code present-link next auto lock finish download-csv delete-room confirm-dialog",
		"admin.html":   "admin-token room-code refresh starts chart start-nodes start-players bias error bias-verdict start-verdicts student-verdicts stats",
		"present.html": "room-code join-url qr names player-count question bulb countdown answer-count chart right-answer fastest leaderboard podium",
	}
	for page, list := range ids {
		b, err := fs.ReadFile(FS, page)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range strings.Fields(list) {
			if !strings.Contains(string(b), `id="`+id+`"`) {
				t.Errorf("%s has no #%s", page, id)
			}
		}
	}
}
