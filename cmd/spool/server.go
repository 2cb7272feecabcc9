package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// defaultServer is where commands that talk to Spool's HTTP services
// (lookback, gateway, console) connect unless --server or SPOOL_SERVER says
// otherwise: the default --http address of `spool serve`.
const defaultServer = "http://127.0.0.1:8080"

// serverFlags are the connection flags of commands that talk to Spool's
// HTTP API. They are persistent flags of each command tree.
type serverFlags struct {
	server  string
	timeout time.Duration
	token   string
}

// addServerFlags registers --server and --timeout on cmd and its
// subcommands.
func addServerFlags(cmd *cobra.Command) *serverFlags {
	f := &serverFlags{}
	def := defaultServer
	if env := os.Getenv("SPOOL_SERVER"); env != "" {
		def = env
	}
	cmd.PersistentFlags().StringVar(&f.server, "server", def, "base URL of Spool's HTTP API (spool serve --http); also SPOOL_SERVER")
	cmd.PersistentFlags().DurationVar(&f.timeout, "timeout", 30*time.Second, "give up on a request after this long")
	cmd.PersistentFlags().StringVar(&f.token, "token", os.Getenv("SPOOL_TOKEN"), "bearer token for the HTTP API when it runs with --http-tokens; also SPOOL_TOKEN (prefer the variable: flags show in ps)")
	return f
}

// exitError makes main exit with code instead of 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErrorf is a mistake in the command line or its input: exit code 2.
func usageErrorf(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// exitCode is the process exit code for err.
func exitCode(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return 1
}

// apiError is a non-2xx answer of the HTTP API.
type apiError struct {
	Status int
	Detail string
}

func (e *apiError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("server answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("server answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Detail)
}

// do sends a request to the API and decodes a JSON answer into out (if
// not nil). A 400 answer (bad input) is an exit-2 error carrying the
// server's message.
func (f *serverFlags) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	base, err := url.Parse(strings.TrimSuffix(f.server, "/"))
	if err != nil || base.Scheme == "" || base.Host == "" {
		return usageErrorf("--server %q: want a URL such as http://127.0.0.1:8080", f.server)
	}
	u := base.JoinPath(path)
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if f.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w (is spool serve running with its HTTP listener at %s?)", err, f.server)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var p struct{ Detail string }
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(b, &p) != nil {
			p.Detail = strings.TrimSpace(string(b))
		}
		ae := &apiError{Status: resp.StatusCode, Detail: p.Detail}
		if resp.StatusCode == http.StatusBadRequest {
			return &exitError{code: 2, err: ae}
		}
		return ae
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, u.Path, err)
	}
	return nil
}
