package lookback

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

const testRules = `
rules:
  - name: payment-follows-order
    when: {type: order.placed}
    expect: {type: payment.completed}
    within: 5m
  - name: billing-handles-orders
    when: {topic: orders}
    handled_by: billing
    within: 1m
`

func receiptRec(off int64, forOff int64, outcome string, at time.Time) Record {
	b, _ := json.Marshal(receiptWire{Group: "billing", Topic: "orders", Partition: 0, Offset: forOff, Outcome: outcome, Attempts: 1, Time: at})
	return Record{Topic: "spool.receipts", Offset: off, Timestamp: at, Value: b}
}

// plantedFlows: A met, B a hole, C completed late, D completed before its
// trigger was archived; orders 10 and 11 handled (success, dead-letter), 12
// only warned (a hole), 13 never handled (a hole).
func plantedFlows() (first, late []Record) {
	first = []Record{
		ceRecord("orders", 0, 10, "k", "order.placed", "A", t0, "{}"),
		ceRecord("orders", 0, 11, "k", "order.placed", "B", t0, "{}"),
		ceRecord("orders", 0, 12, "k", "order.placed", "C", t0, "{}"),
		ceRecord("payments", 0, 1, "k", "payment.completed", "A", t0.Add(time.Minute), "{}"),
		// D's payment is archived before its order (another partition).
		ceRecord("payments", 0, 2, "k", "payment.completed", "D", t0.Add(2*time.Minute), "{}"),
		ceRecord("orders", 0, 13, "k", "order.placed", "D", t0.Add(time.Minute), "{}"),
		receiptRec(0, 10, "success", t0.Add(10*time.Second)),
		receiptRec(1, 11, "dead-letter", t0.Add(20*time.Second)),
		receiptRec(2, 12, "warning", t0.Add(20*time.Second)),
	}
	late = []Record{ceRecord("payments", 0, 3, "k", "payment.completed", "C", t0.Add(10*time.Minute), "{}")}
	return first, late
}

func checkReport(t *testing.T, rep Report) {
	t.Helper()
	if len(rep.Rules) != 2 {
		t.Fatalf("report: %+v", rep)
	}
	pay, bill := rep.Rules[0], rep.Rules[1]
	if pay.Checked != 4 || pay.Violations != 2 || pay.Pending != 0 || len(pay.Holes) != 1 || pay.Holes[0].CorrelationID != "B" ||
		len(pay.Late) != 1 || pay.Late[0].CorrelationID != "C" || pay.Late[0].LateBy != 5*60*1000 {
		t.Fatalf("payment rule: %+v", pay)
	}
	if bill.Checked != 4 || bill.Violations != 2 || len(bill.Holes) != 2 || bill.Holes[0].Event.Offset != 12 || bill.Holes[1].Event.Offset != 13 {
		t.Fatalf("billing rule: %+v", bill)
	}
	if !bill.Holes[0].Due.Equal(t0.Add(time.Minute)) || bill.Holes[0].Event.Type != "order.placed" {
		t.Fatalf("billing hole: %+v", bill.Holes[0])
	}
}

type countHooks struct {
	NopHooks
	checked, violated map[string]int
	holes             map[string]int
}

func (h *countHooks) RuleChecked(rule string, v bool) {
	h.checked[rule]++
	if v {
		h.violated[rule]++
	}
}
func (h *countHooks) RuleHoles(rule string, n int) { h.holes[rule] = n }

func TestRulesIncremental(t *testing.T) {
	rules, err := ParseRules([]byte(testRules))
	if err != nil {
		t.Fatal(err)
	}
	hooks := &countHooks{checked: map[string]int{}, violated: map[string]int{}, holes: map[string]int{}}
	e := newRuleEngine(rules, hooks, nil, "spool.receipts")
	first, late := plantedFlows()
	e.observe(first)
	e.tick(t0.Add(30 * time.Second))
	if r := e.report(); r.Rules[0].Pending != 2 || r.Rules[0].Checked != 2 || len(r.Rules[1].Holes) != 0 {
		t.Fatalf("before the deadlines: %+v", r)
	}
	e.tick(t0.Add(6 * time.Minute))
	if r := e.report(); len(r.Rules[0].Holes) != 2 {
		t.Fatalf("after the deadline: holes %+v", r.Rules[0].Holes)
	}
	e.observe(late)
	checkReport(t, e.report())
	if hooks.checked["payment-follows-order"] != 4 || hooks.violated["payment-follows-order"] != 2 ||
		hooks.holes["payment-follows-order"] != 1 || hooks.holes["billing-handles-orders"] != 2 {
		t.Fatalf("hooks: %+v", hooks)
	}
}

func TestRulesVerifyRange(t *testing.T) {
	rules, err := ParseRules([]byte(testRules))
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenSQLite(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first, late := plantedFlows()
	// An order outside the range is not checked.
	first = append(first, ceRecord("orders", 0, 9, "k", "order.placed", "Z", t0.Add(-time.Hour), "{}"))
	if err := s.Append(context.Background(), append(first, late...)); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(context.Background(), s, rules, "", t0.Add(-time.Minute), t0.Add(5*time.Minute), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep)
	// Verified while C's payment is still within reach of now: pending, not a hole.
	rep, err = Verify(context.Background(), s, rules, "", t0.Add(-time.Minute), t0.Add(5*time.Minute), t0.Add(3*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.Rules[0]; p.Pending != 2 || len(p.Holes) != 0 {
		t.Fatalf("verify before the deadline: %+v", p)
	}
}

func TestParseRulesErrors(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{`rules: [{name: a, when: {type: x}, expect: {type: y}}]`, "within"},
		{`rules: [{name: a, when: {type: x}, within: 5m}]`, "exactly one of expect and handled_by"},
		{`rules: [{name: a, when: {type: x}, expect: {type: y}, handled_by: g, within: 5m}]`, "exactly one"},
		{`rules: [{when: {type: x}, handled_by: g, within: 5m}]`, "no name"},
		{`rules: [{name: a, when: {}, handled_by: g, within: 5m}]`, "when needs"},
		{`rules: [{name: a, when: {type: x}, handled_by: g, within: soon}]`, "duration"},
		{`rules: [{name: a, when: {type: x}, handled_by: g, within: 5m, colour: red}]`, "colour"},
		{`rules: [{name: a, when: {type: x}, handled_by: g, within: 5m}, {name: a, when: {type: x}, handled_by: g, within: 5m}]`, "twice"},
		{`{"rules": [{"name": "a", "when": {"type": "x"}, "handled_by": "g", "within": "-1m"}]}`, "positive"},
	} {
		if _, err := ParseRules([]byte(c.doc)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: %v, want an error mentioning %q", c.doc, err, c.want)
		}
	}
	// JSON works as well as YAML.
	rs, err := ParseRules([]byte(`{"rules": [{"name": "a", "when": {"topic": "orders"}, "handled_by": "billing", "within": "1m"}]}`))
	if err != nil || len(rs) != 1 || time.Duration(rs[0].Within) != time.Minute {
		t.Fatalf("json rules: %+v %v", rs, err)
	}
}
