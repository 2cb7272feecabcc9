package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spoolmq/spool/internal/httpapi"
)

// ListQuery selects recent requests for Store.List, newest first.
type ListQuery struct {
	// States keeps requests in one of these states (default: any).
	States []State
	// Topic keeps the requests of one topic (default: any).
	Topic string
	// Before continues a listing: only requests created before this
	// (CreatedAt, ID) position (default: from the newest).
	Before *ListCursor
	// Limit bounds the requests returned (default and maximum 500).
	Limit int
}

// ListCursor is a position in the newest-first order of requests.
type ListCursor struct {
	CreatedAt time.Time
	ID        string
}

// String encodes the cursor for the before parameter.
func (c ListCursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.CreatedAt.UnixMilli(), 10) + ":" + c.ID))
}

// ParseListCursor decodes a cursor written by ListCursor.String.
func ParseListCursor(s string) (ListCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	ms, id, ok := strings.Cut(string(b), ":")
	n, err2 := strconv.ParseInt(ms, 10, 64)
	if err != nil || !ok || err2 != nil || id == "" {
		return ListCursor{}, errors.New("gateway: malformed cursor")
	}
	return ListCursor{CreatedAt: time.UnixMilli(n).UTC(), ID: id}, nil
}

const maxList = 500

// List implements Store: requests newest first (by creation time, then
// id), from the index on (created_at, id).
func (s *SQLStore) List(ctx context.Context, q ListQuery) ([]*Request, error) {
	var (
		where []string
		args  []any
	)
	if q.Topic != "" {
		where, args = append(where, "topic = ?"), append(args, q.Topic)
	}
	if len(q.States) > 0 {
		marks := make([]string, len(q.States))
		for i, st := range q.States {
			marks[i], args = "?", append(args, string(st))
		}
		where = append(where, "state IN ("+strings.Join(marks, ", ")+")")
	}
	if c := q.Before; c != nil {
		ms := c.CreatedAt.UnixMilli()
		where = append(where, "(created_at < ? OR (created_at = ? AND id < ?))")
		args = append(args, ms, ms, c.ID)
	}
	limit := q.Limit
	if limit <= 0 || limit > maxList {
		limit = maxList
	}
	query := `SELECT ` + requestCols + ` FROM spool_gateway_requests`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY created_at DESC, id DESC LIMIT " + strconv.Itoa(limit)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("gateway: list requests: %w", err)
	}
	defer rows.Close()
	var out []*Request
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			return nil, fmt.Errorf("gateway: list requests: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("gateway: list requests: %w", err)
	}
	return out, nil
}

// listOut is the body of GET /api/requests.
type listOut struct {
	Requests []statusOut `json:"requests"`
	// Next is the before cursor of the next (older) page; absent on the
	// last page.
	Next string `json:"next,omitempty"`
}

var allStates = []State{Accepted, Pending, Succeeded, Failed, Cancelled, Expired}

// listRequests serves GET /api/requests?status=&topic=&limit=&before=:
// recent requests, newest first, that the caller may read (read scope on
// their topic, or submitted by the caller). A page holds at most limit
// requests, fewer when some were not the caller's to see; next continues.
func (g *Gateway) listRequests(w http.ResponseWriter, r *http.Request) error {
	v := r.URL.Query()
	for name := range v {
		switch name {
		case "status", "topic", "limit", "before", "access_token":
		default:
			return httpapi.Errorf(http.StatusBadRequest, "unknown query parameter %q; GET /api/requests takes status, topic, limit and before", name)
		}
	}
	q := ListQuery{Topic: v.Get("topic"), Limit: 50}
	for _, s := range strings.Split(v.Get("status"), ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		st := State(strings.ToLower(s))
		known := false
		for _, a := range allStates {
			known = known || a == st
		}
		if !known {
			return httpapi.Errorf(http.StatusBadRequest, "status %q: want one or more (comma-separated) of accepted, pending, succeeded, failed, cancelled, expired", s)
		}
		q.States = append(q.States, st)
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxList {
			return httpapi.Errorf(http.StatusBadRequest, "limit %q: want a number from 1 to %d", s, maxList)
		}
		q.Limit = n
	}
	if s := v.Get("before"); s != "" {
		c, err := ParseListCursor(s)
		if err != nil {
			return httpapi.Errorf(http.StatusBadRequest, "before %q: want the next cursor of a previous page", s)
		}
		q.Before = &c
	}
	// The caller is authenticated (401 otherwise) and rate limited once;
	// with a topic, it needs read on it (403 otherwise).
	authTopic := q.Topic
	if authTopic == "" {
		authTopic = "*"
	}
	principal, err := g.authorize(r, OpRead, authTopic)
	var he *httpapi.Error
	switch {
	case err == nil:
	case q.Topic == "" && errors.As(err, &he) && he.Status == http.StatusForbidden:
		// No read on every topic: each request is checked below.
	default:
		return err
	}
	all := err == nil
	reqs, err := g.store.List(r.Context(), q)
	if err != nil {
		return err
	}
	out := listOut{Requests: []statusOut{}}
	allowed := map[string]bool{}
	for _, req := range reqs {
		ok := all || (principal != "" && req.Principal == principal)
		if !ok {
			may, seen := allowed[req.Topic]
			if !seen {
				_, aerr := g.cfg.Auth.Authorize(r, OpRead, req.Topic)
				may = aerr == nil
				allowed[req.Topic] = may
			}
			ok = may
		}
		if ok {
			out.Requests = append(out.Requests, statusDoc(req))
		}
	}
	if len(reqs) == q.Limit {
		last := reqs[len(reqs)-1]
		out.Next = ListCursor{CreatedAt: last.CreatedAt, ID: last.ID}.String()
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}
