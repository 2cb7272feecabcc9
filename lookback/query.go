package lookback

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Filter is a selection of events in the form people write it: the
// query parameters of GET /api/lookback/events, the body of POST
// /api/lookback/replays, and the flags of `spool lookback search`.
type Filter struct {
	Topic         string `json:"topic,omitempty"`
	Key           string `json:"key,omitempty"`
	ID            string `json:"id,omitempty"`
	Type          string `json:"type,omitempty"`
	Source        string `json:"source,omitempty"`
	Subject       string `json:"subject,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
	CausationID   string `json:"causation_id,omitempty"`
	// From and To are RFC 3339 times; From is inclusive, To exclusive.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Since is a Go duration ("1h"): From is that long before now. It
	// cannot be combined with From.
	Since string `json:"since,omitempty"`
	// Q keeps events whose payload contains this substring.
	Q string `json:"q,omitempty"`
	// Where keeps events whose JSON payload has a value at a path:
	// "data.customer.id=c-42".
	Where string `json:"where,omitempty"`
}

// filterParams are the query parameters a Filter reads, in order.
var filterParams = []string{"topic", "key", "id", "type", "source", "subject", "correlation_id", "causation_id", "from", "to", "since", "q", "where"}

// FilterFromValues reads a Filter from URL query parameters.
func FilterFromValues(v url.Values) Filter {
	return Filter{
		Topic: v.Get("topic"), Key: v.Get("key"), ID: v.Get("id"), Type: v.Get("type"),
		Source: v.Get("source"), Subject: v.Get("subject"), CorrelationID: v.Get("correlation_id"),
		CausationID: v.Get("causation_id"), From: v.Get("from"), To: v.Get("to"), Since: v.Get("since"),
		Q: v.Get("q"), Where: v.Get("where"),
	}
}

// Values writes f as URL query parameters (the inverse of FilterFromValues).
func (f Filter) Values() url.Values {
	v := url.Values{}
	for name, val := range map[string]string{"topic": f.Topic, "key": f.Key, "id": f.ID, "type": f.Type,
		"source": f.Source, "subject": f.Subject, "correlation_id": f.CorrelationID, "causation_id": f.CausationID,
		"from": f.From, "to": f.To, "since": f.Since, "q": f.Q, "where": f.Where} {
		if val != "" {
			v.Set(name, val)
		}
	}
	return v
}

// Query turns f into a Query, resolving Since against now. Its errors wrap
// ErrBadQuery and say which field is wrong.
func (f Filter) Query(now time.Time) (Query, error) {
	q := Query{Topic: f.Topic, ID: f.ID, Type: f.Type, Source: f.Source, Subject: f.Subject,
		CorrelationID: f.CorrelationID, CausationID: f.CausationID, Contains: f.Q}
	if f.Key != "" {
		q.Key, q.HasKey = []byte(f.Key), true
	}
	var err error
	if q.From, err = parseTime("from", f.From); err != nil {
		return Query{}, err
	}
	if q.To, err = parseTime("to", f.To); err != nil {
		return Query{}, err
	}
	if f.Since != "" {
		if f.From != "" {
			return Query{}, fmt.Errorf("%w: since and from cannot both be given", ErrBadQuery)
		}
		d, err := time.ParseDuration(f.Since)
		if err != nil || d <= 0 {
			return Query{}, fmt.Errorf("%w: since %q: want a positive duration such as 30m or 24h", ErrBadQuery, f.Since)
		}
		q.From = now.Add(-d)
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return Query{}, fmt.Errorf("%w: the time range is empty: from %s is not before to %s", ErrBadQuery,
			q.From.Format(time.RFC3339Nano), q.To.Format(time.RFC3339Nano))
	}
	if f.Where != "" {
		if q.Where, err = ParseWhere(f.Where); err != nil {
			return Query{}, err
		}
	}
	return q, nil
}

func parseTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s %q: want an RFC 3339 time such as 2026-12-01T10:00:00Z", ErrBadQuery, name, s)
	}
	return t, nil
}

// ParseLimit parses a limit parameter: empty is the default.
func ParseLimit(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1000 {
		return 0, fmt.Errorf("%w: limit %q: want a number from 1 to 1000", ErrBadQuery, s)
	}
	return n, nil
}

// ParseOrder parses an order parameter: "newest" (the default) or "oldest".
func ParseOrder(s string) (oldest bool, err error) {
	switch strings.ToLower(s) {
	case "", "newest", "desc":
		return false, nil
	case "oldest", "asc":
		return true, nil
	}
	return false, fmt.Errorf("%w: order %q: want newest or oldest", ErrBadQuery, s)
}

// ReplaySpec says what a replay sends where.
type ReplaySpec struct {
	Filter Filter `json:"filter"`
	// ToTopic sends every event to this topic; empty (with ToGroup
	// empty) sends each to its original topic.
	ToTopic string `json:"to_topic,omitempty"`
	// ToGroup sends every event to the replay topic of one consumer
	// group, spool.replay.<group>, which only agents of that group with
	// agent.WithReplay read.
	ToGroup string `json:"to_group,omitempty"`
	// Rate caps events per second; 0 is unlimited.
	Rate float64 `json:"rate,omitempty"`
	// DryRun counts what would be replayed and produces nothing.
	DryRun bool `json:"dry_run,omitempty"`
}
