package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/spoolmq/spool/internal/httpapi"
)

// apiClient calls a Spool HTTP API (the lookback archive's, the
// gateway's) through its http.Handler: the service itself in `spool
// serve`, a reverse proxy to it in `spool console`. It decodes JSON
// answers and turns problem+json ones into *httpapi.Error with the API's
// status and detail, so a page shows what the API said.
type apiClient struct {
	h    http.Handler
	name string // "lookback", "gateway": prefixes the errors
}

// maxAPIBody bounds an API answer the console reads (a search page of
// 1,000 events of 1 MiB each would be more; the pages ask for less).
const maxAPIBody = 64 << 20

// do sends method path?query (path starts with /api/) with body as JSON
// (nil: none) and decodes a 2xx answer into out (nil: ignored). It returns
// the status. The Authorization header of from, the console request it
// serves, goes along, so the API authorizes the same principal.
func (a apiClient) do(ctx context.Context, from *http.Request, method, path string, query url.Values, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, fmt.Errorf("console: %s: %w", a.name, err)
		}
		rd = bytes.NewReader(b)
	}
	u := "http://spool-console.internal" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, fmt.Errorf("console: %s: %w", a.name, err)
	}
	// No Host of our own: a reverse proxy (spool console --lookback-url)
	// sends the target's, which virtual hosts in front of it expect.
	req.Host = ""
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if from != nil {
		if v := from.Header.Get("Authorization"); v != "" {
			req.Header.Set("Authorization", v)
		}
		req.RemoteAddr = from.RemoteAddr
	}
	rec := &recorder{header: http.Header{}}
	a.h.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.status >= 300 {
		return rec.status, a.problem(rec)
	}
	if out != nil {
		if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
			return rec.status, httpapi.Errorf(http.StatusBadGateway, "console: %s %s %s: answer is not the JSON expected: %v", a.name, method, path, err)
		}
	}
	return rec.status, nil
}

// problem turns a non-2xx answer into an *httpapi.Error keeping its
// status; the detail of a problem+json body is the message.
func (a apiClient) problem(rec *recorder) error {
	var p httpapi.Problem
	detail := strings.TrimSpace(rec.body.String())
	if json.Unmarshal(rec.body.Bytes(), &p) == nil && p.Detail != "" {
		detail = p.Detail
	}
	if detail == "" {
		detail = http.StatusText(rec.status)
	}
	if len(detail) > 500 {
		detail = detail[:500] + "…"
	}
	status := rec.status
	if status < 400 {
		status = http.StatusBadGateway // a redirect the console cannot follow
	}
	return httpapi.Errorf(status, "%s: %s", a.name, detail)
}

// recorder is the http.ResponseWriter of an in-process API call: it keeps
// the status and up to maxAPIBody bytes of the body.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.body.Len()+len(b) > maxAPIBody {
		return 0, fmt.Errorf("console: API answer larger than %d bytes", maxAPIBody)
	}
	return r.body.Write(b)
}
