package apiclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCall(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/rooms":
			var body struct{ Title string }
			if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("Content-Type") != "application/json" ||
				json.NewDecoder(r.Body).Decode(&body) != nil || body.Title != "t" {
				http.Error(w, `{"error":{"code":"invalid"}}`, http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusCreated)
			w.Write([]byte(`{"code":"123456","hostToken":"h"}`))
		default:
			http.Error(w, `{"error":{"code":"not_found","message":"no such room"}}`, http.StatusNotFound)
		}
	}))
	defer srv.Close()
	c := New(srv.URL, 4)
	defer c.CloseIdle()
	var got struct{ Code, HostToken string }
	if err := c.Call(context.Background(), "POST", "/api/rooms", "tok", map[string]string{"title": "t"}, &got); err != nil {
		t.Fatalf("got %v, want nil", err)
	}
	if got.Code != "123456" || got.HostToken != "h" {
		t.Errorf("got %+v, want code 123456, host token h", got)
	}
	err := c.Call(context.Background(), "GET", "/api/rooms/1", "", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "no such room") {
		t.Errorf("got %v, want an error quoting the 404 and its body", err)
	}
	if c.Base() != srv.URL {
		t.Errorf("Base: got %q, want %q", c.Base(), srv.URL)
	}
}
