// Package apiclient calls a Bulb server's HTTP API (docs/protocol.md) for the measurement
// programs that play host and students (scripts/fairness, scripts/reveal): JSON in, JSON
// out, a bearer token where the call needs one.
//
// A Client is safe for concurrent use.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Client calls one server.
type Client struct {
	base string
	hc   *http.Client
}

// New returns a client of the server at base (http://host:port) that keeps up to idle
// connections open to it, and gives up on a call after 30 s.
func New(base string, idle int) *Client {
	return &Client{base: base, hc: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: idle}}}
}

// Base is the server's base URL.
func (c *Client) Base() string { return c.base }

// Call calls the API with a bearer token (if any) and a JSON body (if not nil), and
// decodes the JSON answer into out (if not nil). An answer other than 2xx is an error that
// quotes it.
func (c *Client) Call(ctx context.Context, method, path, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s %s", method, path, resp.Status, bytes.TrimSpace(raw))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

// CloseIdle closes the connections kept open.
func (c *Client) CloseIdle() { c.hc.CloseIdleConnections() }
