package console

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The lookback API's answers (docs/lookback.md, lookback/openapi.json), as
// the console reads them. The console decodes the JSON itself rather than
// importing the lookback package: it talks to the API, in process or
// remote, like any client.

// lbEvent is an archived event.
type lbEvent struct {
	Topic         string     `json:"topic"`
	Partition     int32      `json:"partition"`
	Offset        int64      `json:"offset"`
	Timestamp     time.Time  `json:"timestamp"`
	Key           *string    `json:"key"`
	KeyBase64     string     `json:"key_base64,omitempty"`
	ID            string     `json:"id,omitempty"`
	Type          string     `json:"type,omitempty"`
	Source        string     `json:"source,omitempty"`
	Subject       string     `json:"subject,omitempty"`
	CorrelationID string     `json:"correlation_id,omitempty"`
	CausationID   string     `json:"causation_id,omitempty"`
	Headers       []lbHeader `json:"headers"`
	Value         *string    `json:"value"`
	ValueBase64   string     `json:"value_base64,omitempty"`
	Size          int        `json:"size"`
}

// lbHeader is one record header; binary values are in ValueBase64.
type lbHeader struct {
	Key         string `json:"key"`
	Value       string `json:"value"`
	ValueBase64 string `json:"value_base64,omitempty"`
}

// Ref is the event's place, "topic/partition/offset".
func (e *lbEvent) Ref() string {
	return e.Topic + "/" + strconv.Itoa(int(e.Partition)) + "/" + strconv.FormatInt(e.Offset, 10)
}

// KeyText is the key for display: its text, hex for a binary key, "" for
// none.
func (e *lbEvent) KeyText() string {
	if e.Key != nil {
		return *e.Key
	}
	if e.KeyBase64 != "" {
		if b, err := base64.StdEncoding.DecodeString(e.KeyBase64); err == nil {
			return "0x" + hex.EncodeToString(b)
		}
	}
	return ""
}

// ContentType is the value of the event's content-type header.
func (e *lbEvent) ContentType() string {
	for _, h := range e.Headers {
		if h.Key == "content-type" {
			return h.Value
		}
	}
	return ""
}

type lbSearch struct {
	Events  []*lbEvent `json:"events"`
	Next    string     `json:"next,omitempty"`
	Scanned int        `json:"scanned,omitempty"`
}

type lbStats struct {
	Events      int64     `json:"events"`
	RawBytes    int64     `json:"raw_bytes"`
	Oldest      time.Time `json:"oldest"`
	Newest      time.Time `json:"newest"`
	IngestError string    `json:"ingest_error,omitempty"`
}

type lbReceipt struct {
	Group     string    `json:"group"`
	EventID   string    `json:"event_id"`
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Outcome   string    `json:"outcome"`
	Attempts  int       `json:"attempts"`
	Duration  float64   `json:"duration_ms"`
	Time      time.Time `json:"time"`
}

type lbFlowEvent struct {
	Event        *lbEvent    `json:"event"`
	GapMS        float64     `json:"gap_ms"`
	Depth        int         `json:"depth"`
	MissingCause bool        `json:"missing_cause,omitempty"`
	Receipts     []lbReceipt `json:"receipts"`
}

type lbFlowNode struct {
	ID       string        `json:"id"`
	Type     string        `json:"type,omitempty"`
	Topic    string        `json:"topic"`
	Children []*lbFlowNode `json:"children,omitempty"`
}

type lbFlow struct {
	CorrelationID string        `json:"correlation_id"`
	Events        []lbFlowEvent `json:"events"`
	Roots         []*lbFlowNode `json:"roots"`
	Start         time.Time     `json:"start"`
	End           time.Time     `json:"end"`
	Duration      float64       `json:"duration_ms"`
	Truncated     bool          `json:"truncated,omitempty"`
}

// lbFilter is a selection of events: the search's query parameters and
// a replay's filter.
type lbFilter struct {
	Topic         string `json:"topic,omitempty"`
	Key           string `json:"key,omitempty"`
	ID            string `json:"id,omitempty"`
	Type          string `json:"type,omitempty"`
	Source        string `json:"source,omitempty"`
	Subject       string `json:"subject,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
	CausationID   string `json:"causation_id,omitempty"`
	From          string `json:"from,omitempty"`
	To            string `json:"to,omitempty"`
	Since         string `json:"since,omitempty"`
	Q             string `json:"q,omitempty"`
	Where         string `json:"where,omitempty"`
}

// lbFilterParams are the filter's query parameters, in the form's order.
var lbFilterParams = []string{"topic", "key", "id", "type", "source", "subject", "correlation_id", "causation_id", "from", "to", "since", "q", "where"}

func filterFromValues(v url.Values) lbFilter {
	return lbFilter{Topic: v.Get("topic"), Key: v.Get("key"), ID: v.Get("id"), Type: v.Get("type"),
		Source: v.Get("source"), Subject: v.Get("subject"), CorrelationID: v.Get("correlation_id"),
		CausationID: v.Get("causation_id"), From: lbTime(v.Get("from")), To: lbTime(v.Get("to")), Since: v.Get("since"),
		Q: v.Get("q"), Where: v.Get("where")}
}

// lbShortTime is a time as people type it, in UTC: 2026-12-01T10:00 or
// 2026-12-01 10:00[:05].
var lbShortTime = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(:\d{2})?)$`)

// lbTime turns a short UTC time into RFC 3339 for the API; anything else
// goes as typed (the API says what is wrong with it).
func lbTime(s string) string {
	s = strings.TrimSpace(s)
	m := lbShortTime.FindStringSubmatch(s)
	if m == nil {
		return s
	}
	t := m[2]
	if m[3] == "" {
		t += ":00"
	}
	return m[1] + "T" + t + "Z"
}

func (f lbFilter) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"topic": f.Topic, "key": f.Key, "id": f.ID, "type": f.Type,
		"source": f.Source, "subject": f.Subject, "correlation_id": f.CorrelationID, "causation_id": f.CausationID,
		"from": f.From, "to": f.To, "since": f.Since, "q": f.Q, "where": f.Where} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

func (f lbFilter) empty() bool { return len(f.values()) == 0 }

type lbReplaySpec struct {
	Filter  lbFilter `json:"filter"`
	ToTopic string   `json:"to_topic,omitempty"`
	ToGroup string   `json:"to_group,omitempty"`
	Rate    float64  `json:"rate,omitempty"`
	DryRun  bool     `json:"dry_run,omitempty"`
}

type lbReplay struct {
	ID       string           `json:"id"`
	Spec     lbReplaySpec     `json:"spec"`
	Status   string           `json:"status"`
	Error    string           `json:"error,omitempty"`
	Total    int64            `json:"total"`
	Done     int64            `json:"done"`
	Created  time.Time        `json:"created"`
	Updated  time.Time        `json:"updated"`
	Finished time.Time        `json:"finished"`
	ByTopic  map[string]int64 `json:"by_topic,omitempty"`
	Preview  []*lbEvent       `json:"preview,omitempty"`
	// ReadOnly is the console's: no cancel button.
	ReadOnly bool `json:"-"`
}

type lbEventRef struct {
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	ID        string    `json:"id,omitempty"`
	Type      string    `json:"type,omitempty"`
	Timestamp time.Time `json:"timestamp"`
}

type lbHole struct {
	Rule          string     `json:"rule"`
	CorrelationID string     `json:"correlation_id,omitempty"`
	Event         lbEventRef `json:"event"`
	Due           time.Time  `json:"due"`
	CompletedAt   time.Time  `json:"completed_at"`
	LateBy        float64    `json:"late_by_ms,omitempty"`
}

type lbMatch struct {
	Type  string `json:"type,omitempty"`
	Topic string `json:"topic,omitempty"`
}

type lbRule struct {
	Name      string   `json:"name"`
	When      lbMatch  `json:"when"`
	Expect    *lbMatch `json:"expect,omitempty"`
	HandledBy string   `json:"handled_by,omitempty"`
	Within    string   `json:"within"`
}

type lbRuleReport struct {
	Rule       lbRule   `json:"rule"`
	Checked    int64    `json:"checked"`
	Violations int64    `json:"violations"`
	Pending    int      `json:"pending"`
	Holes      []lbHole `json:"holes"`
	Late       []lbHole `json:"late"`
}

type lbRulesReport struct {
	Rules []lbRuleReport `json:"rules"`
}

// lookbackClient calls the lookback API (Config.Lookback).
type lookbackClient struct{ api apiClient }

func (c *Console) lookback() *lookbackClient {
	if c.cfg.Lookback == nil {
		return nil
	}
	return &lookbackClient{apiClient{h: c.cfg.Lookback, name: "lookback"}}
}

func (l *lookbackClient) search(ctx context.Context, r *http.Request, f lbFilter, order, cursor string, limit int) (*lbSearch, error) {
	q := f.values()
	if order != "" {
		q.Set("order", order)
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out lbSearch
	_, err := l.api.do(ctx, r, http.MethodGet, "/api/lookback/events", q, nil, &out)
	return &out, err
}

func (l *lookbackClient) event(ctx context.Context, r *http.Request, topic string, partition int32, offset int64) (*lbEvent, error) {
	var out lbEvent
	p := "/api/lookback/events/" + url.PathEscape(topic) + "/" + strconv.Itoa(int(partition)) + "/" + strconv.FormatInt(offset, 10)
	_, err := l.api.do(ctx, r, http.MethodGet, p, nil, nil, &out)
	return &out, err
}

func (l *lookbackClient) flow(ctx context.Context, r *http.Request, id string) (*lbFlow, error) {
	var out lbFlow
	_, err := l.api.do(ctx, r, http.MethodGet, "/api/lookback/flows/"+url.PathEscape(id), nil, nil, &out)
	return &out, err
}

func (l *lookbackClient) stats(ctx context.Context, r *http.Request) (*lbStats, error) {
	var out lbStats
	_, err := l.api.do(ctx, r, http.MethodGet, "/api/lookback/stats", nil, nil, &out)
	return &out, err
}

func (l *lookbackClient) rules(ctx context.Context, r *http.Request) (*lbRulesReport, error) {
	var out lbRulesReport
	_, err := l.api.do(ctx, r, http.MethodGet, "/api/lookback/rules", nil, nil, &out)
	return &out, err
}

func (l *lookbackClient) startReplay(ctx context.Context, r *http.Request, spec lbReplaySpec) (*lbReplay, error) {
	var out lbReplay
	_, err := l.api.do(ctx, r, http.MethodPost, "/api/lookback/replays", nil, spec, &out)
	return &out, err
}

func (l *lookbackClient) replay(ctx context.Context, r *http.Request, id string) (*lbReplay, error) {
	var out lbReplay
	_, err := l.api.do(ctx, r, http.MethodGet, "/api/lookback/replays/"+url.PathEscape(id), nil, nil, &out)
	return &out, err
}

func (l *lookbackClient) replays(ctx context.Context, r *http.Request) ([]lbReplay, error) {
	var out struct {
		Replays []lbReplay `json:"replays"`
	}
	_, err := l.api.do(ctx, r, http.MethodGet, "/api/lookback/replays", nil, nil, &out)
	return out.Replays, err
}

func (l *lookbackClient) cancelReplay(ctx context.Context, r *http.Request, id string) (*lbReplay, error) {
	var out lbReplay
	_, err := l.api.do(ctx, r, http.MethodPost, "/api/lookback/replays/"+url.PathEscape(id)+"/cancel", nil, nil, &out)
	return &out, err
}
