package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/bulbquiz/bulb/internal/testenv"
)

// composeCommand returns the command that runs Docker Compose: docker-compose, or else the
// docker CLI's compose plugin. Without either the test is skipped (or fails under
// BULB_REQUIRE_DEPS=1, where scripts/test.sh has installed docker-compose).
func composeCommand(tb testing.TB) []string {
	tb.Helper()
	if path, err := exec.LookPath("docker-compose"); err == nil {
		return []string{path}
	}
	if docker, err := exec.LookPath("docker"); err == nil && exec.Command(docker, "compose", "version").Run() == nil {
		return []string{docker, "compose"}
	}
	return []string{testenv.Program(tb, "docker-compose")}
}

// TestComposeFile validates the shipped docker-compose.yml (no Docker engine needed: only
// `config`), checks that it refuses to run without an admin token, that it has the
// services the README promises, and that deploy/redis.conf turns on the append-only file.
func TestComposeFile(t *testing.T) {
	t.Parallel()
	compose := composeCommand(t)
	run := func(token string, args ...string) ([]byte, error) {
		t.Helper()
		cmd := exec.Command(compose[0], append(append(compose[1:], "-f", "../docker-compose.yml"), args...)...)
		cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "BULB_ADMIN_TOKEN=") })
		if token != "" {
			cmd.Env = append(cmd.Env, "BULB_ADMIN_TOKEN="+token)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return out, fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return out, nil
	}

	if _, err := run("test-token", "config", "-q"); err != nil {
		t.Fatalf("docker-compose.yml does not validate: %v", err)
	}
	if _, err := run("", "config", "-q"); err == nil || !strings.Contains(err.Error(), "BULB_ADMIN_TOKEN") {
		t.Errorf("config without BULB_ADMIN_TOKEN: got %v, want a failure naming BULB_ADMIN_TOKEN", err)
	}
	out, err := run("test-token", "config", "--services")
	if err != nil {
		t.Fatal(err)
	}
	services := strings.Fields(string(out))
	for _, want := range []string{"redis", "bulb1", "bulb2", "judge", "proxy"} {
		if !slices.Contains(services, want) {
			t.Errorf("services: got %v, want %s among them", services, want)
		}
	}

	conf, err := os.ReadFile("../deploy/redis.conf")
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(conf))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, _ := strings.Cut(line, " ")
		settings[strings.ToLower(name)] = strings.TrimSpace(value)
	}
	for name, want := range map[string]string{"appendonly": "yes", "appendfsync": "everysec", "maxmemory-policy": "noeviction"} {
		if got := settings[name]; got != want {
			t.Errorf("deploy/redis.conf: got %s %q, want %q", name, got, want)
		}
	}

	caddy, err := os.ReadFile("../deploy/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"bulb1:8080", "bulb2:8080", "health_uri /healthz"} {
		if !bytes.Contains(caddy, []byte(want)) {
			t.Errorf("deploy/Caddyfile does not mention %q", want)
		}
	}
}
