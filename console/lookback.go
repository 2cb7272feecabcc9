package console

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/internal/httpapi"
)

// The lookback pages: search the archive (every filter of the API, paged
// with its cursor), an event's detail, a flow's timeline and causation
// tree with its receipts, the verification rules' holes, and replays (a
// dry run, then the replay, followed to its end). Everything comes from
// the lookback API (Config.Lookback); the console adds the ACL checks:
// events of topics the principal may not Read are not shown, and a replay
// needs Read on every topic it selects and Write on every topic it sends
// to.

// lbPageSize is how many events a search page shows.
const lbPageSize = 50

// lbSearchData is the search page.
type lbSearchData struct {
	Off     bool
	Filter  lbFilter
	Order   string
	Cursor  string
	Next    string // the next page's URL, "" on the last
	First   string // the first page's URL when on a later page
	Events  []*lbEvent
	Hidden  int // events not shown: no Read ACL on their topic
	Scanned int
	Stats   *lbStats
	Error   string // the API's answer to a bad filter
	Params  []lbParam
	Replay  bool // the selection may be replayed (not read-only, not empty)
}

// lbParam is one filter field of the search form.
type lbParam struct {
	Name, Label, Value, Hint string
}

var lbParamLabels = map[string][2]string{
	"topic":          {"Topic", ""},
	"key":            {"Key", "exact"},
	"id":             {"Event id (ce_id)", ""},
	"type":           {"Type (ce_type)", ""},
	"source":         {"Source (ce_source)", ""},
	"subject":        {"Subject (ce_subject)", ""},
	"correlation_id": {"Correlation id", ""},
	"causation_id":   {"Causation id", ""},
	"from":           {"From (UTC)", "2026-12-01T10:00, inclusive"},
	"to":             {"To (UTC)", "RFC 3339 or short, exclusive"},
	"since":          {"Since", "e.g. 30m, 24h"},
	"q":              {"Payload contains", "text"},
	"where":          {"JSON field", "data.customer.id=c-42"},
}

func lbParams(v url.Values) []lbParam {
	out := make([]lbParam, 0, len(lbFilterParams))
	for _, n := range lbFilterParams {
		l := lbParamLabels[n]
		out = append(out, lbParam{Name: n, Label: l[0], Hint: l[1], Value: v.Get(n)})
	}
	return out
}

// lookbackOff renders the page saying the archive is off.
func (c *Console) lookbackOff(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "lookback", "Lookback", "lookback", lbSearchData{Off: true})
}

func (c *Console) lookbackSearch(w http.ResponseWriter, r *http.Request) {
	lb := c.lookback()
	if lb == nil {
		c.lookbackOff(w, r)
		return
	}
	v := r.URL.Query()
	f := filterFromValues(v)
	d := lbSearchData{Filter: f, Order: v.Get("order"), Cursor: v.Get("cursor"), Params: lbParams(v)}
	if f.Topic != "" {
		if err := c.mayRead(r, topicResource, f.Topic, kmsg.ACLOperationRead); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	ctx, cancel := c.pageContext(r)
	defer cancel()
	// The count line is fetched alongside the search, not before it.
	stats := make(chan *lbStats, 1)
	go func() {
		st, err := lb.stats(ctx, r)
		if err != nil {
			st = nil
		}
		stats <- st
	}()
	res, err := lb.search(ctx, r, f, d.Order, d.Cursor, lbPageSize)
	d.Stats = <-stats
	if err != nil {
		var he *httpapi.Error
		if errors.As(err, &he) && he.Status == http.StatusBadRequest && !wantsJSON(r) && r.Header.Get("HX-Request") == "" {
			// A bad filter: the form again, with what the API said.
			d.Error = he.Detail
			c.render(w, r, http.StatusBadRequest, "lookback", "Lookback", "lookback", d)
			return
		}
		c.fail(w, r, err)
		return
	}
	for _, e := range res.Events {
		if c.mayRead(r, topicResource, e.Topic, kmsg.ACLOperationRead) != nil {
			d.Hidden++
			continue
		}
		d.Events = append(d.Events, e)
	}
	d.Scanned = res.Scanned
	if res.Next != "" {
		nv := f.values()
		if d.Order != "" {
			nv.Set("order", d.Order)
		}
		nv.Set("cursor", res.Next)
		d.Next = c.cfg.BasePath + "lookback?" + nv.Encode()
	}
	if d.Cursor != "" {
		fv := f.values()
		if d.Order != "" {
			fv.Set("order", d.Order)
		}
		d.First = c.cfg.BasePath + "lookback?" + fv.Encode()
	}
	d.Replay = !c.cfg.ReadOnly && !f.empty()
	c.render(w, r, http.StatusOK, "lookback", "Lookback", "lookback", d)
}

// lbEventData is an event's page.
type lbEventData struct {
	Off      bool
	Event    *lbEvent
	Body     lbBody
	Envelope []lbField
	Receipts []lbReceipt
	Flow     string // the correlation id whose flow holds the event
}

type lbField struct{ Name, Value string }

// lbBody is a decoded payload: JSON pretty-printed, text as is, binary as
// a hex dump.
type lbBody struct {
	Kind      string // "json", "text", "binary", "none"
	Text      string
	Truncated bool
}

// lbMaxShown bounds the bytes of a payload the page shows.
const lbMaxShown = 256 << 10

func decodeBody(value *string, b64, contentType string) lbBody {
	var raw []byte
	switch {
	case value != nil:
		raw = []byte(*value)
	case b64 != "":
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return lbBody{Kind: "text", Text: b64}
		}
		raw = b
	default:
		return lbBody{Kind: "none"}
	}
	var out lbBody
	if len(raw) > lbMaxShown {
		raw, out.Truncated = raw[:lbMaxShown], true
	}
	if !out.Truncated && (strings.Contains(contentType, "json") || json.Valid(raw)) {
		var buf bytes.Buffer
		if json.Indent(&buf, raw, "", "  ") == nil {
			out.Kind, out.Text = "json", buf.String()
			return out
		}
	}
	if utf8.Valid(raw) {
		out.Kind, out.Text = "text", string(raw)
		return out
	}
	out.Kind, out.Text = "binary", hex.Dump(raw)
	return out
}

func (c *Console) lookbackEvent(w http.ResponseWriter, r *http.Request) {
	lb := c.lookback()
	if lb == nil {
		c.lookbackOff(w, r)
		return
	}
	topic := r.PathValue("topic")
	p, err1 := strconv.ParseInt(r.PathValue("partition"), 10, 32)
	o, err2 := strconv.ParseInt(r.PathValue("offset"), 10, 64)
	if err1 != nil || err2 != nil || p < 0 || o < 0 {
		c.fail(w, r, httpapi.Errorf(http.StatusBadRequest, "console: want lookback/events/TOPIC/PARTITION/OFFSET with a non-negative partition and offset"))
		return
	}
	if err := c.mayRead(r, topicResource, topic, kmsg.ACLOperationRead); err != nil {
		c.fail(w, r, err)
		return
	}
	ctx, cancel := c.pageContext(r)
	defer cancel()
	e, err := lb.event(ctx, r, topic, int32(p), o)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := lbEventData{Event: e, Body: decodeBody(e.Value, e.ValueBase64, e.ContentType())}
	for _, f := range []lbField{{"ce_id", e.ID}, {"ce_type", e.Type}, {"ce_source", e.Source}, {"ce_subject", e.Subject},
		{"correlation_id", e.CorrelationID}, {"causation_id", e.CausationID}} {
		if f.Value != "" {
			d.Envelope = append(d.Envelope, f)
		}
	}
	for _, h := range e.Headers {
		switch h.Key {
		case "ce_time", "ce_specversion", "content-type", "traceparent", "tracestate":
			d.Envelope = append(d.Envelope, lbField{h.Key, h.Value})
		}
	}
	// The receipts are in the flow that holds the event: its correlation
	// id's, or the one its own id starts.
	for _, id := range []string{e.CorrelationID, e.ID} {
		if id == "" || d.Flow != "" {
			continue
		}
		fl, err := lb.flow(ctx, r, id)
		if err != nil {
			continue // a 404: no flow; the page shows the event anyway
		}
		for _, fe := range fl.Events {
			if fe.Event != nil && fe.Event.Ref() == e.Ref() {
				d.Flow, d.Receipts = id, fe.Receipts
			}
		}
	}
	c.render(w, r, http.StatusOK, "lookback_event", "Event "+e.Ref(), "lookback", d)
}

// lbFlowData is a flow's page.
type lbFlowData struct {
	Off      bool
	Flow     *lbFlow
	Steps    []lbFlowEvent
	Hidden   int
	Tree     []*lbTreeNode
	Timeline lbTimeline
	Outcomes map[string]int // receipts by outcome
}

// lbTreeNode is a causation tree node as the page draws it.
type lbTreeNode struct {
	ID, Type, Topic string
	Ref             string // "" when the event is hidden
	Hidden          bool
	Children        []*lbTreeNode
}

func (c *Console) lookbackFlow(w http.ResponseWriter, r *http.Request) {
	lb := c.lookback()
	if lb == nil {
		c.lookbackOff(w, r)
		return
	}
	ctx, cancel := c.pageContext(r)
	defer cancel()
	fl, err := lb.flow(ctx, r, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := lbFlowData{Flow: fl, Outcomes: map[string]int{}}
	refs := map[string]string{}
	hidden := map[string]bool{}
	for _, fe := range fl.Events {
		if fe.Event == nil {
			continue
		}
		if c.mayRead(r, topicResource, fe.Event.Topic, kmsg.ACLOperationRead) != nil {
			d.Hidden++
			hidden[fe.Event.Topic] = true
			continue
		}
		if fe.Event.ID != "" {
			refs[fe.Event.ID] = fe.Event.Ref()
		}
		for _, rc := range fe.Receipts {
			d.Outcomes[rc.Outcome]++
		}
		d.Steps = append(d.Steps, fe)
	}
	if len(d.Steps) == 0 && d.Hidden > 0 {
		topics := make([]string, 0, len(hidden))
		for t := range hidden {
			topics = append(topics, t)
		}
		sort.Strings(topics)
		c.fail(w, r, httpapi.Errorf(http.StatusForbidden, "console: %s may not read any event of flow %q (no Read ACL on %s)",
			principal(r), fl.CorrelationID, strings.Join(topics, ", ")))
		return
	}
	// Each event once: the same id archived twice (a replay into an
	// archived topic) must not draw its subtree twice.
	drawn := map[string]bool{}
	var walk func(ns []*lbFlowNode) []*lbTreeNode
	walk = func(ns []*lbFlowNode) []*lbTreeNode {
		out := make([]*lbTreeNode, 0, len(ns))
		for _, n := range ns {
			if drawn[n.ID] {
				continue
			}
			drawn[n.ID] = true
			t := &lbTreeNode{ID: n.ID, Type: n.Type, Topic: n.Topic, Ref: refs[n.ID], Children: walk(n.Children)}
			if t.Ref == "" {
				t.Hidden, t.Type, t.Topic = true, "", ""
			}
			out = append(out, t)
		}
		return out
	}
	d.Tree = walk(fl.Roots)
	d.Timeline = flowTimeline(d.Steps)
	c.render(w, r, http.StatusOK, "lookback_flow", "Flow "+fl.CorrelationID, "lookback", d)
}

// lbRulesData is the rules page.
type lbRulesData struct {
	Off    bool
	Rules  []lbRuleReport
	Hidden int
}

func (c *Console) lookbackRules(w http.ResponseWriter, r *http.Request) {
	lb := c.lookback()
	if lb == nil {
		c.lookbackOff(w, r)
		return
	}
	ctx, cancel := c.pageContext(r)
	defer cancel()
	rep, err := lb.rules(ctx, r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := lbRulesData{}
	keep := func(hs []lbHole) []lbHole {
		out := hs[:0:0]
		for _, h := range hs {
			if c.mayRead(r, topicResource, h.Event.Topic, kmsg.ACLOperationRead) != nil {
				d.Hidden++
				continue
			}
			out = append(out, h)
		}
		return out
	}
	for _, rr := range rep.Rules {
		rr.Holes, rr.Late = keep(rr.Holes), keep(rr.Late)
		d.Rules = append(d.Rules, rr)
	}
	c.render(w, r, http.StatusOK, "lookback_rules", "Verification rules", "lookback", d)
}

// lbDuration formats milliseconds for the flow page: "850 ms", "2.4 s".
func lbDuration(ms float64) string {
	switch {
	case ms < 1:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 1000:
		return fmt.Sprintf("%.0f ms", ms)
	case ms < 120000:
		return fmt.Sprintf("%.1f s", ms/1000)
	default:
		return fmt.Sprintf("%.1f min", ms/60000)
	}
}
