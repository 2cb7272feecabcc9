package lookback

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/spoolmq/spool/internal/httpapi"
)

// Rule is a verification rule: every event matching When must be followed,
// within Within, either by an event matching Expect with the same
// correlation id, or by a success or dead-letter receipt of group
// HandledBy for that event (exactly one of Expect and HandledBy).
type Rule struct {
	Name      string   `yaml:"name" json:"name"`
	When      Match    `yaml:"when" json:"when"`
	Expect    *Match   `yaml:"expect,omitempty" json:"expect,omitempty"`
	HandledBy string   `yaml:"handled_by,omitempty" json:"handled_by,omitempty"`
	Within    Duration `yaml:"within" json:"within"`
}

// Match selects events by type and topic (empty matches any).
type Match struct {
	Type  string `yaml:"type,omitempty" json:"type,omitempty"`
	Topic string `yaml:"topic,omitempty" json:"topic,omitempty"`
}

func (m Match) matches(topic, typ string) bool {
	return (m.Type == "" || m.Type == typ) && (m.Topic == "" || m.Topic == topic)
}

// Duration is a time.Duration written as a Go duration string ("5m").
type Duration time.Duration

// UnmarshalYAML reads "5m".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: within %q: want a duration such as 5m", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes "5m0s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads "5m".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("within %q: want a duration such as 5m", b)
	}
	*d = Duration(v)
	return nil
}

// ParseRules reads rules from YAML or JSON (JSON is YAML):
//
//	rules:
//	  - name: payment-follows-order
//	    when: {type: order.placed}
//	    expect: {type: payment.completed}
//	    within: 5m
//	  - name: billing-handles-orders
//	    when: {topic: orders}
//	    handled_by: billing
//	    within: 1m
func ParseRules(b []byte) ([]Rule, error) {
	var doc struct {
		Rules []Rule `yaml:"rules"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("lookback: rules: %w", err)
	}
	if err := validateRules(doc.Rules); err != nil {
		return nil, err
	}
	return doc.Rules, nil
}

// LoadRules reads a rules file (YAML or JSON).
func LoadRules(path string) ([]Rule, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("lookback: rules: %w", err)
	}
	rs, err := ParseRules(b)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return rs, nil
}

func validateRules(rs []Rule) error {
	names := map[string]bool{}
	for i, r := range rs {
		switch {
		case r.Name == "":
			return fmt.Errorf("lookback: rule %d has no name", i+1)
		case names[r.Name]:
			return fmt.Errorf("lookback: rule %q is defined twice", r.Name)
		case (r.Expect == nil) == (r.HandledBy == ""):
			return fmt.Errorf("lookback: rule %q needs exactly one of expect and handled_by", r.Name)
		case r.When.Type == "" && r.When.Topic == "":
			return fmt.Errorf("lookback: rule %q: when needs a type or a topic", r.Name)
		case r.Expect != nil && r.Expect.Type == "" && r.Expect.Topic == "":
			return fmt.Errorf("lookback: rule %q: expect needs a type or a topic", r.Name)
		case r.Within <= 0:
			return fmt.Errorf("lookback: rule %q: within must be a positive duration", r.Name)
		}
		names[r.Name] = true
	}
	return nil
}

// Hole is an expectation a rule found unmet: the event that started it,
// when it was due, and (for a late completion) when it was met.
type Hole struct {
	Rule          string    `json:"rule"`
	CorrelationID string    `json:"correlation_id,omitempty"`
	Event         EventRef  `json:"event"`
	Due           time.Time `json:"due"`
	// CompletedAt and LateBy are set for late completions.
	CompletedAt time.Time `json:"completed_at,omitzero"`
	LateBy      float64   `json:"late_by_ms,omitempty"`
}

// EventRef names an archived event.
type EventRef struct {
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	ID        string    `json:"id,omitempty"`
	Type      string    `json:"type,omitempty"`
	Timestamp time.Time `json:"timestamp"`
}

// RuleReport is one rule's state.
type RuleReport struct {
	Rule Rule `json:"rule"`
	// Checked counts settled expectations (met on time, late or missed).
	Checked int64 `json:"checked"`
	// Violations counts expectations not met on time.
	Violations int64 `json:"violations"`
	// Pending counts expectations not yet due.
	Pending int `json:"pending"`
	// Holes are the open violations (oldest first, at most maxHoles).
	Holes []Hole `json:"holes"`
	// Late are violations met late (newest last, at most maxHoles).
	Late []Hole `json:"late"`
}

// Report is the state of every rule.
type Report struct {
	Rules []RuleReport `json:"rules"`
}

const maxHoles = 1000

type expectation struct {
	rule   int
	corr   string
	ev     EventRef
	due    time.Time
	state  int  // 0 pending, 1 violated (a hole)
	queued bool // counted in Pending until settled or due
}

// ruleEngine evaluates rules incrementally: observe feeds it archived
// events (receipts included), tick declares holes whose deadline passed.
// Expectations are kept in memory: after a restart, holes of triggers
// archived before it are found by Verify over that range.
type ruleEngine struct {
	rules []Rule
	hooks Hooks
	now   func() time.Time
	mu    struct {
		sync.Mutex
		open     map[string][]*expectation // by rule/correlation or rule/topic/partition/offset
		met      map[string]time.Time      // follow-ups seen before their trigger
		stats    []RuleReport
		receipts string
	}
}

func newRuleEngine(rules []Rule, hooks Hooks, now func() time.Time, receiptsTopic string) *ruleEngine {
	e := &ruleEngine{rules: rules, hooks: hooks, now: now}
	e.mu.open = map[string][]*expectation{}
	e.mu.met = map[string]time.Time{}
	e.mu.receipts = receiptsTopic
	e.mu.stats = make([]RuleReport, len(rules))
	for i, r := range rules {
		e.mu.stats[i] = RuleReport{Rule: r, Holes: []Hole{}, Late: []Hole{}}
	}
	return e
}

func (e *ruleEngine) run(ctx context.Context) {
	if len(e.rules) == 0 {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.tick(e.now())
		}
	}
}

func tpoKey(rule int, topic string, p int32, off int64) string {
	return fmt.Sprintf("%d|%s/%d/%d", rule, topic, p, off)
}

// observe feeds archived records to the rules.
func (e *ruleEngine) observe(rs []Record) {
	if len(e.rules) == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range rs {
		e.observeLocked(&rs[i])
	}
}

func (e *ruleEngine) observeLocked(r *Record) {
	a := attrsOf(r.Headers)
	var rc *Receipt
	if r.Topic == e.mu.receipts {
		if x, ok := parseReceipt(r.Value); ok {
			rc = &x
		}
	}
	ref := EventRef{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, ID: a.id, Type: a.typ, Timestamp: r.Timestamp}
	for i, rule := range e.rules {
		// Completions first, so an event that both completes and starts
		// expectations of one rule does not complete its own.
		switch {
		case rule.Expect != nil && a.corr != "" && rule.Expect.matches(r.Topic, a.typ):
			e.completeLocked(fmt.Sprintf("%d|%s", i, a.corr), r.Timestamp)
		case rule.HandledBy != "" && rc != nil && rc.Group == rule.HandledBy && (rc.Outcome == "success" || rc.Outcome == "dead-letter"):
			e.completeLocked(tpoKey(i, rc.Topic, rc.Partition, rc.Offset), rc.Time)
		}
		if !rule.When.matches(r.Topic, a.typ) {
			continue
		}
		var key string
		switch {
		case rule.Expect != nil && a.corr != "":
			key = fmt.Sprintf("%d|%s", i, a.corr)
		case rule.Expect != nil:
			continue // no correlation id: nothing can follow it
		default:
			key = tpoKey(i, r.Topic, r.Partition, r.Offset)
		}
		x := &expectation{rule: i, corr: a.corr, ev: ref, due: r.Timestamp.Add(time.Duration(rule.Within))}
		if at, ok := e.mu.met[key]; ok && !at.Before(r.Timestamp) {
			// Its follow-up was archived first (another partition).
			delete(e.mu.met, key)
			e.settleLocked(x, at)
			continue
		}
		x.queued = true
		e.mu.open[key] = append(e.mu.open[key], x)
		e.mu.stats[i].Pending++
	}
}

// completeLocked settles the expectations waiting under key, or remembers
// the completion for a trigger still to come.
func (e *ruleEngine) completeLocked(key string, at time.Time) {
	xs, ok := e.mu.open[key]
	if !ok {
		e.mu.met[key] = at
		return
	}
	delete(e.mu.open, key)
	for _, x := range xs {
		e.settleLocked(x, at)
	}
}

func (e *ruleEngine) settleLocked(x *expectation, at time.Time) {
	st := &e.mu.stats[x.rule]
	name := e.rules[x.rule].Name
	switch {
	case x.state == 1: // a hole, completed late
		st.Holes = slices.DeleteFunc(st.Holes, func(h Hole) bool { return h.Event == x.ev })
		h := Hole{Rule: name, CorrelationID: x.corr, Event: x.ev, Due: x.due, CompletedAt: at,
			LateBy: float64(at.Sub(x.due).Microseconds()) / 1000}
		st.Late = append(st.Late, h)
		if len(st.Late) > maxHoles {
			st.Late = st.Late[1:]
		}
		e.hooks.RuleHoles(name, len(st.Holes))
	case !at.After(x.due):
		if x.queued {
			st.Pending--
		}
		st.Checked++
		e.hooks.RuleChecked(name, false)
	default: // met late before the deadline was noticed: a violation
		if x.queued {
			st.Pending--
		}
		st.Checked++
		st.Violations++
		e.hooks.RuleChecked(name, true)
		st.Late = append(st.Late, Hole{Rule: name, CorrelationID: x.corr, Event: x.ev, Due: x.due, CompletedAt: at,
			LateBy: float64(at.Sub(x.due).Microseconds()) / 1000})
		if len(st.Late) > maxHoles {
			st.Late = st.Late[1:]
		}
	}
}

// tick declares the expectations due before now holes, and forgets
// completions seen without a trigger for longer than their rule's window.
func (e *ruleEngine) tick(now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for key, xs := range e.mu.open {
		keep := xs[:0]
		for _, x := range xs {
			if x.state == 0 && now.After(x.due) {
				x.state = 1
				st := &e.mu.stats[x.rule]
				st.Pending--
				st.Checked++
				st.Violations++
				if len(st.Holes) < maxHoles {
					st.Holes = append(st.Holes, Hole{Rule: e.rules[x.rule].Name, CorrelationID: x.corr, Event: x.ev, Due: x.due})
				}
				e.hooks.RuleChecked(e.rules[x.rule].Name, true)
				e.hooks.RuleHoles(e.rules[x.rule].Name, len(st.Holes))
			}
			keep = append(keep, x)
		}
		e.mu.open[key] = keep
	}
	var maxWithin time.Duration
	for _, r := range e.rules {
		maxWithin = max(maxWithin, time.Duration(r.Within))
	}
	for key, at := range e.mu.met {
		if now.Sub(at) > 2*maxWithin {
			delete(e.mu.met, key)
		}
	}
}

func (e *ruleEngine) report() Report {
	e.mu.Lock()
	defer e.mu.Unlock()
	rep := Report{Rules: make([]RuleReport, len(e.mu.stats))}
	for i, st := range e.mu.stats {
		st.Holes = slices.Clone(st.Holes)
		st.Late = slices.Clone(st.Late)
		sort.Slice(st.Holes, func(a, b int) bool { return st.Holes[a].Due.Before(st.Holes[b].Due) })
		rep.Rules[i] = st
	}
	return rep
}

// Verify evaluates rules over the archived events with timestamps in
// [from, to): the events are fed in timestamp order to a fresh engine
// whose clock follows them, and expectations still open at the end are
// holes if due before now, pending otherwise. Follow-ups (late ones too)
// are looked for in every event archived after to, up to now.
func Verify(ctx context.Context, st Store, rules []Rule, receiptsTopic string, from, to, now time.Time) (Report, error) {
	if err := validateRules(rules); err != nil {
		return Report{}, err
	}
	if len(rules) == 0 {
		return Report{}, fmt.Errorf("%w: no rules to verify", ErrBadQuery)
	}
	if receiptsTopic == "" {
		receiptsTopic = "spool.receipts"
	}
	e := newRuleEngine(rules, NopHooks{}, nil, receiptsTopic)
	end := now.Add(time.Millisecond)
	q := Query{From: from, To: end, Oldest: true, Limit: 1000}
	for {
		p, err := st.Search(ctx, q)
		if err != nil {
			return Report{}, err
		}
		e.mu.Lock()
		for _, ev := range p.Events {
			if !ev.Timestamp.Before(to) {
				// Past the range: only completions count.
				saved := e.rules
				e.rules = completionsOnly(saved)
				e.observeLocked(ev.record())
				e.rules = saved
			} else {
				e.observeLocked(ev.record())
			}
		}
		e.mu.Unlock()
		if len(p.Events) > 0 {
			e.tick(p.Events[len(p.Events)-1].Timestamp)
		}
		if p.Next == "" {
			break
		}
		q.Cursor = p.Next
	}
	e.tick(now)
	return e.report(), nil
}

// completionsOnly returns rules whose When matches nothing.
func completionsOnly(rs []Rule) []Rule {
	out := slices.Clone(rs)
	for i := range out {
		out[i].When = Match{Type: "\x00never"}
	}
	return out
}

func (ev *Event) record() *Record {
	return &Record{Topic: ev.Topic, Partition: ev.Partition, Offset: ev.Offset, Timestamp: ev.Timestamp, Key: ev.Key,
		Headers: ev.Headers, Value: ev.Value}
}

func (s *Service) apiRules(w http.ResponseWriter, r *http.Request) {
	if err := s.mayCluster(r); err != nil {
		httpapi.WriteError(w, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, s.rules.report())
}

// VerifyRequest is the body of POST /api/lookback/verify: a range (since,
// or from and to) and, optionally, rules (default the service's own).
type VerifyRequest struct {
	Since string `json:"since,omitempty"`
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
	Rules []Rule `json:"rules,omitempty"`
}

func (s *Service) apiVerify(w http.ResponseWriter, r *http.Request) {
	if err := s.mayCluster(r); err != nil {
		httpapi.WriteError(w, err)
		return
	}
	var req VerifyRequest
	if err := httpapi.DecodeJSON(w, r, 1<<20, &req); err != nil {
		httpapi.WriteError(w, err)
		return
	}
	now := s.cfg.Now()
	q, err := Filter{Since: req.Since, From: req.From, To: req.To}.Query(now)
	if err != nil {
		apiError(w, err)
		return
	}
	if q.From.IsZero() {
		apiError(w, fmt.Errorf("%w: give a range: since, or from (and to)", ErrBadQuery))
		return
	}
	if q.To.IsZero() {
		q.To = now
	}
	rules := req.Rules
	if len(rules) == 0 {
		rules = s.cfg.Rules
	}
	if err := validateRules(rules); err != nil {
		apiError(w, fmt.Errorf("%w: %v", ErrBadQuery, err))
		return
	}
	rep, err := Verify(r.Context(), s.cfg.Store, rules, s.cfg.ReceiptsTopic, q.From, q.To, now)
	if err != nil {
		apiError(w, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, rep)
}
