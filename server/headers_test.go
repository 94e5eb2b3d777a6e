package main

import (
	"io/fs"
	"net/http"
	"strings"
	"testing"

	"github.com/bulbquiz/bulb/web"
)

// TestSecurityHeaders: every answer, every page and static file, every API call whatever
// its status, carries the Content-Security-Policy and the other security headers. The
// browser tests prove the pages work under the policy.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	s := MustStartServer(t, nil, "--join-rate", "1", "--unknown-room-rate", "1")
	code, host := s.MustRoom(t, sampleQuiz)
	room := "/api/rooms/" + code
	type call struct {
		method, path, token, body string
		status                    int
	}
	calls := []call{
		{"GET", "/", "", "", 200},
		{"GET", "/host", "", "", 200},
		{"GET", "/admin", "", "", 200},
		{"GET", "/healthz", "", "", 200},
		{"GET", "/metrics", "", "", 200},
		{"POST", "/api/rooms", s.Admin, sampleQuiz, 201},
		{"GET", "/api/rooms", s.Admin, "", 200},
		{"GET", "/api/rooms", "", "", 401},
		{"GET", room, host, "", 200},
		{"GET", room, "", "", 401},
		{"POST", room + "/players", "", `{"name":"ada"}`, 201},
		{"POST", room + "/players", "", `{"name":"bob"}`, 429},
		{"POST", room + "/questions/1/open", host, "", 200},
		{"POST", room + "/questions/1/start", host, "", 200},
		{"GET", room + "/questions/1/answers", host, "", 200},
		{"GET", room + "/leaderboard", host, "", 200},
		{"GET", room + "/fairness", host, "", 200},
		{"PUT", room + "/quiz", host, `{}`, 400},
		{"GET", room + "/nothing", "", "", 404},
		{"POST", "/api/rooms/000000x/players", "", `{"name":"eve"}`, 429},
		{"DELETE", "/healthz", "", "", 404},
		{"GET", "/nothing", "", "", 404},
		{"GET", "/ws", "", "", 401},
		{"GET", "/static/nothing.js", "", "", 404},
	}
	// Every file of the pages.
	err := fs.WalkDir(web.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			calls = append(calls, call{"GET", "/static/" + path, "", "", 200})
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
			"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
		"X-Frame-Options":        "DENY",
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
	}
	for _, c := range calls {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			var header map[string]string
			if c.token != "" {
				header = map[string]string{"Authorization": "Bearer " + c.token}
			}
			r := s.callWith(http.DefaultClient, c.method, c.path, header, c.body)
			if r.status != c.status {
				t.Fatalf("got %v, want %d", r, c.status)
			}
			for k, v := range want {
				if got := r.header.Get(k); got != v {
					t.Errorf("%s: got %q, want %q", k, got, v)
				}
			}
			if ct := r.header.Get("Content-Type"); ct == "" || strings.HasPrefix(ct, "application/octet-stream") && c.status == 200 {
				t.Errorf("Content-Type: got %q, want a specific one (nosniff)", ct)
			}
		})
	}
}
