package main

import (
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	noEnv := func(string) string { return "" }
	t.Run("defaults", func(t *testing.T) {
		cfg, err := parseFlags(nil, noEnv, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		want := []group{{5, 1}, {25, 3}, {60, 6}}
		if cfg.clients != 300 || cfg.questions != 200 || !slices.Equal(cfg.groups, want) || cfg.cheaters != 1 {
			t.Errorf("got clients %d, questions %d, groups %v, cheaters %d; want 300, 200, %v, 1", cfg.clients, cfg.questions, cfg.groups, cfg.cheaters, want)
		}
		if cfg.warmup != 11*time.Second || cfg.reactionMean != 300*time.Millisecond || cfg.reactionSD != 50*time.Millisecond {
			t.Errorf("got warmup %v, reaction %v±%v; want 11s, 300ms±50ms", cfg.warmup, cfg.reactionMean, cfg.reactionSD)
		}
		if want := []string{"arrival", "compensated", "synced+arrival", "synced+compensated"}; !slices.Equal(cfg.modes, want) {
			t.Errorf("modes: got %v, want %v", cfg.modes, want)
		}
		if cfg.reactionFloor != 150*time.Millisecond {
			t.Errorf("reaction floor: got %v, want 150ms", cfg.reactionFloor)
		}
	})
	t.Run("quick, one jitter for all", func(t *testing.T) {
		cfg, err := parseFlags([]string{"--quick", "--jitter", "2", "--ping-interval", "1s"}, noEnv, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.clients != 60 || cfg.questions != 20 || cfg.warmup != 3*time.Second {
			t.Errorf("got clients %d, questions %d, warmup %v; want 60, 20, 3s", cfg.clients, cfg.questions, cfg.warmup)
		}
		for _, g := range cfg.groups {
			if g.JitterMs != 2 {
				t.Errorf("group %v: want jitter 2", g)
			}
		}
	})
	t.Run("url takes the token from the environment", func(t *testing.T) {
		cfg, err := parseFlags([]string{"--url", "http://127.0.0.1:8080/"}, func(k string) string {
			if k == "BULB_ADMIN_TOKEN" {
				return "tok"
			}
			return ""
		}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.url != "http://127.0.0.1:8080" || cfg.adminToken != "tok" {
			t.Errorf("got url %q, token %q", cfg.url, cfg.adminToken)
		}
	})
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"url without token", []string{"--url", "http://127.0.0.1:1"}, "BULB_ADMIN_TOKEN"},
		{"clients not a multiple", []string{"--clients", "100"}, "multiple"},
		{"too many questions", []string{"--questions", "201"}, "1 to 200"},
		{"jitter count", []string{"--jitter", "1,2"}, "2 values for 3 groups"},
		{"jitter over delay", []string{"--delays", "5", "--jitter", "6", "--clients", "3"}, "more than the delay"},
		{"bad mode", []string{"--modes", "fast"}, "not one of"},
		{"mode twice", []string{"--modes", "arrival,synced+arrival,arrival"}, "twice"},
		{"reaction floor above the mean", []string{"--reaction-floor", "300ms"}, "below the mean"},
		{"bad reaction", []string{"--reaction-ms", "300"}, "mean,sd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(tc.args, noEnv, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestNumJSON(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{{1.23456, "1.2346"}, {-2, "-2"}, {0, "0"}} {
		b, err := num(tc.in).MarshalJSON()
		if err != nil || string(b) != tc.want {
			t.Errorf("num(%v): got %s, %v; want %s", tc.in, b, err, tc.want)
		}
	}
	if b, _ := num(math.NaN()).MarshalJSON(); string(b) != "null" {
		t.Errorf("NaN: got %s, want null", b)
	}
}
