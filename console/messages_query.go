package console

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/httpapi"
)

// The messages page's query: where to start reading (the newest, the
// oldest, an offset, a time, or a cursor of a previous page), which
// partitions, how many records a page shows, and the filters. The page,
// its scan stream and its export read the same parameters, so a filtered
// view can be bookmarked, streamed and exported alike.

const (
	// msgPageSize is how many records a page shows by default.
	msgPageSize = 50
	// msgMaxPageSize bounds the page size a request may ask for.
	msgMaxPageSize = 500
	// msgScanBudget bounds how many records one filtered broker scan (a
	// page or an export) reads before it stops and says so.
	msgScanBudget = 1_000_000
	// msgLBPostBudget bounds how many archived events a lookback search
	// examines for the filters the archive does not index (key contains,
	// header, partition).
	msgLBPostBudget = 50_000
)

// msgQueryParams are the query parameters of the page, in the form's
// order; anything else is refused.
var msgQueryParams = []string{"partition", "start", "offset", "time", "limit", "cursor",
	"key", "key_match", "header", "type", "from", "to", "q", "source", "budget"}

// msgQuery is a parsed request of the messages page.
type msgQuery struct {
	Topic     string
	Partition int32  // -1: every partition
	Start     string // newest, oldest, offset, time
	Offset    int64  // with Start offset
	Time      time.Time
	Limit     int
	Cursor    *msgCursor // a page after the first
	LBCursor  string     // the lookback API's cursor of the next page
	Filter    msgFilter
	Source    string // "" (the archive when it is on), "broker"
	Budget    int64
	raw       url.Values
}

// msgFilter selects records; its zero value selects every record.
type msgFilter struct {
	Key         string
	KeyContains bool // Key is a substring, not the exact key
	HeaderName  string
	HeaderValue string // with HeaderName; "" with HasValue false: the header is present
	HasValue    bool
	Type        string // ce_type
	From, To    time.Time
	Text        string // the value contains this text
}

func (f msgFilter) active() bool {
	return f.Key != "" || f.HeaderName != "" || f.Type != "" || !f.From.IsZero() || !f.To.IsZero() || f.Text != ""
}

// match reports whether the record passes every filter.
func (f msgFilter) match(r *msgRecord) bool {
	if f.Key != "" {
		if f.KeyContains {
			if !bytes.Contains(r.Key, []byte(f.Key)) {
				return false
			}
		} else if r.KeyNull || string(r.Key) != f.Key {
			return false
		}
	}
	if f.HeaderName != "" {
		ok := false
		for _, h := range r.Headers {
			if h.Key == f.HeaderName && (!f.HasValue || string(h.Value) == f.HeaderValue) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if f.Type != "" && r.header(event.HeaderType) != f.Type {
		return false
	}
	if !f.From.IsZero() && r.Timestamp.Before(f.From) {
		return false
	}
	if !f.To.IsZero() && !r.Timestamp.Before(f.To) {
		return false
	}
	if f.Text != "" && !bytes.Contains(r.Value, []byte(f.Text)) {
		return false
	}
	return true
}

// parseMsgQuery reads the query of topic's messages page; a bad parameter
// is a 400 naming it.
func parseMsgQuery(topic string, v url.Values) (msgQuery, error) {
	q := msgQuery{Topic: topic, Partition: -1, Start: "newest", Limit: msgPageSize, Budget: msgScanBudget, raw: v}
	known := map[string]bool{}
	for _, n := range msgQueryParams {
		known[n] = true
	}
	for n := range v {
		if !known[n] {
			return q, msgBad("unknown parameter %q; the page takes %s", n, strings.Join(msgQueryParams, ", "))
		}
	}
	if s := v.Get("partition"); s != "" && s != "all" {
		p, err := strconv.ParseInt(s, 10, 32)
		if err != nil || p < 0 {
			return q, msgBad("partition %q: want a partition number or all", s)
		}
		q.Partition = int32(p)
	}
	switch s := v.Get("start"); s {
	case "", "newest", "oldest":
		if s != "" {
			q.Start = s
		}
	case "offset":
		q.Start = s
		o, err := strconv.ParseInt(strings.TrimSpace(v.Get("offset")), 10, 64)
		if err != nil || o < 0 {
			return q, msgBad("offset %q: want a non-negative record offset", v.Get("offset"))
		}
		q.Offset = o
	case "time":
		q.Start = s
		t, err := parseMsgTime(v.Get("time"))
		if err != nil || t.IsZero() {
			return q, msgBad("time %q: want RFC 3339 (2026-12-01T10:00:00Z) or YYYY-MM-DDTHH:MM in UTC", v.Get("time"))
		}
		q.Time = t
	default:
		return q, msgBad("start %q: want newest, oldest, offset or time", s)
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > msgMaxPageSize {
			return q, msgBad("limit %q: want a page size from 1 to %d", s, msgMaxPageSize)
		}
		q.Limit = n
	}
	if s := v.Get("budget"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 || n > msgScanBudget {
			return q, msgBad("budget %q: want a number of records from 1 to %d", s, msgScanBudget)
		}
		q.Budget = n
	}
	if s := v.Get("cursor"); s != "" {
		if lb, ok := strings.CutPrefix(s, "lb:"); ok {
			q.LBCursor = lb
		} else {
			c, err := msgParseCursor(s)
			if err != nil {
				return q, err
			}
			q.Cursor = c
		}
	}
	f := &q.Filter
	f.Key = v.Get("key")
	switch m := v.Get("key_match"); m {
	case "", "exact":
	case "contains":
		f.KeyContains = true
	default:
		return q, msgBad("key_match %q: want exact or contains", m)
	}
	if h := v.Get("header"); h != "" {
		name, value, ok := strings.Cut(h, "=")
		if strings.TrimSpace(name) == "" {
			return q, msgBad("header %q: want NAME=VALUE (or NAME: the header is present)", h)
		}
		f.HeaderName, f.HeaderValue, f.HasValue = strings.TrimSpace(name), value, ok
	}
	f.Type = v.Get("type")
	f.Text = v.Get("q")
	var err error
	if f.From, err = parseMsgTime(v.Get("from")); err != nil {
		return q, msgBad("from %q: want RFC 3339 or YYYY-MM-DDTHH:MM in UTC", v.Get("from"))
	}
	if f.To, err = parseMsgTime(v.Get("to")); err != nil {
		return q, msgBad("to %q: want RFC 3339 or YYYY-MM-DDTHH:MM in UTC", v.Get("to"))
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return q, msgBad("the time range from %s to %s is empty", v.Get("from"), v.Get("to"))
	}
	switch s := v.Get("source"); s {
	case "", "auto":
	case "broker":
		q.Source = s
	default:
		return q, msgBad("source %q: want broker (or nothing: the lookback archive when it is on)", s)
	}
	return q, nil
}

func msgBad(format string, args ...any) error {
	return httpapi.Errorf(http.StatusBadRequest, "console: "+format, args...)
}

// parseMsgTime reads RFC 3339 or the value of an <input
// type=datetime-local> (no zone: UTC). "" is the zero time.
func parseMsgTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("console: bad time %q", s)
}

// with returns the query's parameters with the overrides (a "" value
// removes the parameter), for the pages' links.
func (q msgQuery) with(kv ...string) url.Values {
	v := url.Values{}
	for k, vs := range q.raw {
		v[k] = append([]string(nil), vs...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			v.Del(kv[i])
		} else {
			v.Set(kv[i], kv[i+1])
		}
	}
	return v
}

// msgCursor continues a page: older pages read below Bounds, newer ones
// from them, per partition.
type msgCursor struct {
	Older  bool
	Bounds map[int32]int64
}

// String is the cursor as the page's links carry it:
// "older:0@95,1@40" or "newer:0@100,1@41".
func (c *msgCursor) String() string {
	ps := make([]int32, 0, len(c.Bounds))
	for p := range c.Bounds {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	var b strings.Builder
	if c.Older {
		b.WriteString("older:")
	} else {
		b.WriteString("newer:")
	}
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d@%d", p, c.Bounds[p])
	}
	return b.String()
}

func msgParseCursor(s string) (*msgCursor, error) {
	dir, rest, ok := strings.Cut(s, ":")
	c := &msgCursor{Bounds: map[int32]int64{}}
	switch {
	case ok && dir == "older":
		c.Older = true
	case ok && dir == "newer":
	default:
		return nil, msgBad("cursor %q: want older:P@OFFSET,... or newer:P@OFFSET,... (the page's links carry it)", s)
	}
	for _, part := range strings.Split(rest, ",") {
		if part == "" {
			continue
		}
		ps, os, ok := strings.Cut(part, "@")
		p, err1 := strconv.ParseInt(ps, 10, 32)
		o, err2 := strconv.ParseInt(os, 10, 64)
		if !ok || err1 != nil || err2 != nil || p < 0 || o < 0 {
			return nil, msgBad("cursor %q: bad partition@offset %q", s, part)
		}
		c.Bounds[int32(p)] = o
	}
	return c, nil
}

// msgRecord is a record as the pages show and export it, from the broker
// (a kgo.Record) or from the lookback archive.
type msgRecord struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time
	Key       []byte
	KeyNull   bool
	Headers   []kgo.RecordHeader
	Value     []byte
	ValueNull bool
}

func msgFromKgo(r *kgo.Record) *msgRecord {
	return &msgRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp,
		Key: r.Key, KeyNull: r.Key == nil, Headers: r.Headers, Value: r.Value, ValueNull: r.Value == nil}
}

func (r *msgRecord) header(name string) string {
	for _, h := range r.Headers {
		if h.Key == name {
			return string(h.Value)
		}
	}
	return ""
}
