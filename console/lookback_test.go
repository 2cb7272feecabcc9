package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/console"
	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/lookback"
)

// startLookback starts a lookback archive on addrs with its embedded
// store in a temporary directory.
// Topics named *.debug are not archived.
func startLookback(t testing.TB, addrs []string, rules ...lookback.Rule) (*lookback.Service, lookback.Store) {
	t.Helper()
	st, err := lookback.OpenSQLite(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	svc, err := lookback.New(lookback.Config{Brokers: addrs, Store: st, MetadataMaxAge: 250 * time.Millisecond, Rules: rules,
		Exclude: []string{`\.debug$`}})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		svc.Close()
		st.Close()
	})
	return svc, st
}

// waitArchived waits until the archive holds n events.
func waitArchived(t testing.TB, st lookback.Store, n int64) {
	t.Helper()
	kafkatest.Eventually(t, 30*time.Second, fmt.Sprintf("%d archived events", n), func() bool {
		s, err := st.Stats(context.Background())
		return err == nil && s.Events >= n
	})
}

// chain is one flow: an order placed, the payment it caused, the receipt
// the payment caused, all with correlation id corr.
type chain struct {
	corr                    string
	order, payment, receipt *event.Event
}

// produceChain produces a flow through the event envelope: order.placed
// on orders, payment.requested (caused by it) on payments, and
// payment.completed (caused by the payment) on payments.
func produceChain(t testing.TB, addrs []string, corr, customer string) chain {
	t.Helper()
	mk := func(typ string, data any, cause *event.Event) *event.Event {
		ev, err := event.New(typ, event.JSON, data)
		if err != nil {
			t.Fatal(err)
		}
		ev.Source, ev.Key, ev.CorrelationID = "/shop", []byte(customer), corr
		if cause != nil {
			ev.CausationID = cause.ID
		}
		return ev
	}
	c := chain{corr: corr}
	c.order = mk("order.placed", map[string]any{"customer": customer, "total": 42.5}, nil)
	c.payment = mk("payment.requested", map[string]any{"amount": 42.5}, c.order)
	c.receipt = mk("payment.completed", map[string]any{"paid": true}, c.payment)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// One at a time, so the timestamps follow the causation.
	for _, x := range []struct {
		topic string
		ev    *event.Event
	}{{"orders", c.order}, {"payments", c.payment}, {"payments", c.receipt}} {
		rec, err := x.ev.Record(x.topic)
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// postForm posts form values to url and returns the status and body.
func postForm(t testing.TB, u string, form url.Values, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("HX-Request", "true")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func mustContain(t testing.TB, what, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %q", what, w)
		}
	}
}

// TestLookbackPages: search, an event, a flow with its tree, the rules,
// and a replay (dry run, then applied, landing in the target topic with
// the replay headers), on Spool and kfake.
func TestLookbackPages(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "orders", 2)
		kafkatest.CreateTopic(t, addrs, "payments", 2)
		kafkatest.CreateTopic(t, addrs, "orders.debug", 1)
		rule := lookback.Rule{Name: "refund-follows-order", When: lookback.Match{Type: "order.placed"},
			Expect: &lookback.Match{Type: "refund.issued"}, Within: lookback.Duration(time.Millisecond)}
		svc, st := startLookback(t, addrs, rule)
		a := produceChain(t, addrs, "flow-a", "customer-1")
		produceChain(t, addrs, "flow-b", "customer-2")
		waitArchived(t, st, 6)
		_, u := startConsole(t, addrs, console.Config{Lookback: svc.Handler()})

		status, body := get(t, u+"/ui/lookback?correlation_id=flow-a&order=oldest")
		if status != http.StatusOK {
			t.Fatalf("search: %d %s", status, body)
		}
		mustContain(t, "search page", body, "3 shown", "order.placed", "payment.requested", "payment.completed",
			`href="/ui/lookback/flows/flow-a"`, "6 events archived", `id="dry-run"`)
		if strings.Contains(body, "customer-2") {
			t.Error("search by correlation id shows another flow's events")
		}
		// Every filter reaches the API: the key, the payload text, the type.
		_, body = get(t, u+"/ui/lookback?key=customer-2&type=payment.completed&q=paid")
		mustContain(t, "filtered search", body, "1 shown", "customer-2")

		// Short UTC times as people type them: the archive holds events
		// from now, none before 2000 nor after 2100.
		_, body = get(t, u+"/ui/lookback?from=2000-01-01T00:00&to=2100-01-01+00:00&type=order.placed")
		mustContain(t, "short times", body, "2 shown", `value="2000-01-01T00:00"`)
		_, body = get(t, u+"/ui/lookback?to=2000-01-01T00:00&type=order.placed")
		mustContain(t, "before 2000", body, "0 shown")

		// Paging with the API's cursor: 6 events, 50 a page: one page;
		// the order and type filters keep two events of two flows.
		_, body = get(t, u+"/ui/lookback?type=order.placed")
		mustContain(t, "type search", body, "2 shown")
		if strings.Contains(body, `id="next-page"`) {
			t.Error("a single page offers a next page")
		}

		// An event: fields, envelope, pretty JSON body, headers.
		status, body = get(t, u+"/ui/lookback/events/orders/"+partitionOf(t, st, a.order.ID))
		if status != http.StatusOK {
			t.Fatalf("event: %d %s", status, body)
		}
		mustContain(t, "event page", body, a.order.ID, "order.placed", "<code>correlation_id</code>",
			"&#34;total&#34;: 42.5", `href="/ui/lookback/flows/flow-a"`, "ce_specversion",
			`href="/ui/topics/orders/messages?partition=`+strings.Split(partitionOf(t, st, a.order.ID), "/")[0]+`&amp;start=offset&amp;offset=`)

		// The flow: three steps, the tree nests payment.completed under
		// payment.requested under order.placed.
		status, body = get(t, u+"/ui/lookback/flows/flow-a")
		if status != http.StatusOK {
			t.Fatalf("flow: %d %s", status, body)
		}
		mustContain(t, "flow page", body, `id="flow-events">3<`, "↳", `class="lb-timeline"`)
		tree := body[strings.Index(body, `id="lb-tree"`):strings.Index(body, "<h2>Timeline")]
		i1, i2, i3 := strings.Index(tree, "order.placed"), strings.Index(tree, "payment.requested"), strings.Index(tree, "payment.completed")
		if i1 < 0 || i2 < i1 || i3 < i2 || strings.Count(tree[:i3], "<ul>") != 3 {
			t.Errorf("causation tree is not order > payment > receipt:\n%s", tree)
		}

		// The rules: both orders are holes (no refund within 1 ms), linked
		// to their flows.
		kafkatest.Eventually(t, 30*time.Second, "two holes", func() bool {
			_, body = get(t, u+"/ui/lookback/rules")
			return strings.Contains(body, "2 open holes")
		})
		mustContain(t, "rules page", body, "refund-follows-order", `href="/ui/lookback/flows/flow-a"`, `href="/ui/lookback/flows/flow-b"`)

		// Replay flow-a to orders.debug: a dry run first, then applied.
		form := url.Values{"correlation_id": {"flow-a"}, "target": {"topic"}, "to_topic": {"orders.debug"}, "action": {"dry-run"}}
		status, body = postForm(t, u+"/ui/lookback/replays", form)
		if status != http.StatusOK {
			t.Fatalf("dry run: %d %s", status, body)
		}
		mustContain(t, "dry run", body, `id="dry-run-total">3<`, "topic orders.debug", `id="apply-replay"`, "Nothing was sent")
		if got := kafkatest.ReadAll(t, addrs, "orders.debug"); len(got) != 0 {
			t.Fatalf("the dry run produced %d records", len(got))
		}
		form.Set("action", "apply")
		status, body = postForm(t, u+"/ui/lookback/replays", form)
		if status != http.StatusOK || !strings.Contains(body, `data-status="running"`) && !strings.Contains(body, `data-status="done"`) {
			t.Fatalf("apply: %d %s", status, body)
		}
		applied := body
		var recs []*kgo.Record
		kafkatest.Eventually(t, 30*time.Second, "3 replayed records", func() bool {
			recs = kafkatest.ReadAll(t, addrs, "orders.debug")
			return len(recs) >= 3
		})
		// The page polls only the replay's progress line; the poll that
		// finds it finished replaces its whole state.
		m := regexp.MustCompile(`id="replay-([^"]+)" data-status`).FindStringSubmatch(applied)
		if m == nil {
			t.Fatalf("apply: no replay state in %s", applied)
		}
		kafkatest.Eventually(t, 30*time.Second, "the replay's poll retargeted once done", func() bool {
			req, _ := http.NewRequest(http.MethodGet, u+"/ui/lookback/replays/"+m[1], nil)
			req.Header.Set("HX-Request", "true")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(b), `data-status="done"`) {
				return false
			}
			if resp.Header.Get("HX-Retarget") != "#replay-"+m[1] || resp.Header.Get("HX-Reselect") != "#replay-"+m[1] {
				t.Fatalf("the poll of a finished replay is not retargeted to its state: %v", resp.Header)
			}
			return true
		})
		for _, r := range recs {
			if h := header(r, lookback.HeaderReplayID); h == "" || header(r, "correlation_id") != "flow-a" {
				t.Fatalf("replayed record without the replay id or the flow's correlation id: %v", r.Headers)
			}
		}
		_, body = get(t, u+"/ui/lookback/replays")
		mustContain(t, "replays page", body, "topic orders.debug", "correlation_id=flow-a")
	})
}

// partitionOf returns "PARTITION/OFFSET" of the archived event with ce_id id.
func partitionOf(t testing.TB, st lookback.Store, id string) string {
	t.Helper()
	p, err := st.Search(context.Background(), lookback.Query{ID: id})
	if err != nil || len(p.Events) != 1 {
		t.Fatalf("event %s: %v %v", id, p, err)
	}
	return fmt.Sprintf("%d/%d", p.Events[0].Partition, p.Events[0].Offset)
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// TestLookbackFailures: the archive off, an unknown flow and event, a bad
// filter (the API's 400 and its message, on the page and as JSON), a bad
// replay, read-only mode refusing a replay.
func TestLookbackFailures(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "orders", 1)
		kafkatest.CreateTopic(t, addrs, "payments", 1)
		svc, st := startLookback(t, addrs)
		produceChain(t, addrs, "flow-x", "customer-9")
		waitArchived(t, st, 3)

		_, off := startConsole(t, addrs, console.Config{})
		for _, p := range []string{"/ui/lookback", "/ui/lookback/flows/flow-x", "/ui/lookback/rules", "/ui/lookback/replays"} {
			status, body := get(t, off+p)
			if status != http.StatusOK || !strings.Contains(body, `id="lookback-off"`) || !strings.Contains(body, "--lookback-url") {
				t.Errorf("%s with the archive off: %d, want the page saying it is off", p, status)
			}
		}
		if status, body := postForm(t, off+"/ui/lookback/replays", url.Values{"key": {"k"}}); status != http.StatusNotFound || !strings.Contains(body, "archive is off") {
			t.Errorf("replay with the archive off: %d %s", status, body)
		}

		_, u := startConsole(t, addrs, console.Config{Lookback: svc.Handler()})
		status, body := get(t, u+"/ui/lookback/flows/no-such-flow")
		if status != http.StatusNotFound || !strings.Contains(body, `no archived event has correlation id &#34;no-such-flow&#34;`) {
			t.Errorf("unknown flow: %d %s", status, body)
		}
		status, body = get(t, u+"/ui/lookback/events/orders/0/999")
		if status != http.StatusNotFound || !strings.Contains(body, "lookback:") {
			t.Errorf("unknown event: %d %s", status, body)
		}
		status, body = get(t, u+"/ui/lookback/events/orders/x/1")
		if status != http.StatusBadRequest {
			t.Errorf("event with a bad partition: %d %s", status, body)
		}
		// The API's 400 and its message: the form again on a page load, a
		// problem+json for a script.
		status, body = get(t, u+"/ui/lookback?from=yesterday&type=order.placed")
		if status != http.StatusBadRequest || !strings.Contains(body, `id="lb-error"`) || !strings.Contains(body, "want an RFC 3339 time") ||
			!strings.Contains(body, `value="order.placed"`) {
			t.Errorf("bad filter: %d, want 400 with the API's message and the form kept:\n%s", status, body)
		}
		status, body = get(t, u+"/ui/lookback?since=forever", "Accept", "application/json")
		if status != http.StatusBadRequest || !strings.Contains(body, `"status":400`) || !strings.Contains(body, "want a positive duration") {
			t.Errorf("bad filter as JSON: %d %s", status, body)
		}
		for _, c := range []struct {
			form url.Values
			want string
		}{
			{url.Values{"target": {"original"}}, "needs a selection"},
			{url.Values{"key": {"customer-9"}, "target": {"topic"}}, "name the topic"},
			{url.Values{"key": {"customer-9"}, "target": {"topic"}, "to_topic": {"bad topic!"}}, "not a valid topic name"},
			{url.Values{"key": {"customer-9"}, "rate": {"-1"}}, "rate"},
			{url.Values{"from": {"2026-13-01"}}, "want an RFC 3339 time"},
		} {
			status, body := postForm(t, u+"/ui/lookback/replays", c.form)
			if status != http.StatusBadRequest || !strings.Contains(body, c.want) || !strings.Contains(body, `"status":400`) {
				t.Errorf("replay %v: %d %s, want 400 with %q", c.form, status, body, c.want)
			}
		}
		status, body = postForm(t, u+"/ui/lookback/replays", url.Values{"key": {"nobody"}, "action": {"apply"}})
		if status != http.StatusConflict || !strings.Contains(body, "matches no archived event") {
			t.Errorf("replay of nothing: %d %s", status, body)
		}

		_, ro := startConsole(t, addrs, console.Config{Lookback: svc.Handler(), ReadOnly: true})
		for _, action := range []string{"dry-run", "apply"} {
			status, body := postForm(t, ro+"/ui/lookback/replays", url.Values{"key": {"customer-9"}, "action": {action}})
			if status != http.StatusForbidden || !strings.Contains(body, "read-only mode") {
				t.Errorf("read-only %s: %d %s", action, status, body)
			}
		}
		if _, body := get(t, ro+"/ui/lookback?key=customer-9"); strings.Contains(body, `id="dry-run"`) {
			t.Error("read-only search page offers a replay")
		}
		// Cancelling a replay: refused read-only, 404 for an unknown one.
		if status, body := postForm(t, ro+"/ui/lookback/replays/rp-none/cancel", nil); status != http.StatusForbidden || !strings.Contains(body, "read-only mode") {
			t.Errorf("read-only cancel: %d %s", status, body)
		}
		if status, body := postForm(t, u+"/ui/lookback/replays/rp-none/cancel", nil); status != http.StatusNotFound || !strings.Contains(body, "lookback:") {
			t.Errorf("cancel of an unknown replay: %d %s", status, body)
		}
		reps, err := st.Replays(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, rp := range reps {
			if !rp.Spec.DryRun {
				t.Errorf("a refused replay ran: %+v", rp)
			}
		}
	})
}

// TestLookbackACLs: events of a topic the principal may not Read are
// hidden from searches and flows, refused as a page, and a replay needs
// Read on what it selects and Write on where it sends.
func TestLookbackACLs(t *testing.T) {
	addrs := kafkatest.StartKfake(t)
	kafkatest.CreateTopic(t, addrs, "orders", 1)
	kafkatest.CreateTopic(t, addrs, "payments", 1)
	svc, st := startLookback(t, addrs)
	c := produceChain(t, addrs, "flow-acl", "customer-7")
	waitArchived(t, st, 3)
	_, u := startConsole(t, addrs, console.Config{Lookback: svc.Handler(), Authorizer: aclAuthorizer(t,
		allow("ann", kmsg.ACLResourceTypeTopic, "orders", kmsg.ACLOperationRead),
		allow("ann", kmsg.ACLResourceTypeTopic, "orders", kmsg.ACLOperationWrite),
		allow("bob", kmsg.ACLResourceTypeTopic, "payments", kmsg.ACLOperationRead),
	)})
	ann := []string{"Authorization", "Bearer ann"}

	status, body := get(t, u+"/ui/lookback?correlation_id=flow-acl", ann...)
	if status != http.StatusOK {
		t.Fatalf("ann's search: %d %s", status, body)
	}
	mustContain(t, "ann's search", body, "1 shown", `id="lb-hidden">2 hidden`, "order.placed")
	if strings.Contains(body, "payment.requested") {
		t.Error("ann sees an event of payments")
	}
	if status, body := get(t, u+"/ui/lookback?topic=payments", ann...); status != http.StatusForbidden || !strings.Contains(body, "may not READ") {
		t.Errorf("ann's search of payments: %d %s", status, body)
	}
	if status, _ := get(t, u+"/ui/lookback/events/payments/"+partitionOf(t, st, c.payment.ID), ann...); status != http.StatusForbidden {
		t.Errorf("ann opens an event of payments: %d", status)
	}
	status, body = get(t, u+"/ui/lookback/flows/flow-acl", ann...)
	if status != http.StatusOK || !strings.Contains(body, `id="flow-events">1<`) || strings.Contains(body, "payment.completed") ||
		!strings.Contains(body, "an event you may not read") {
		t.Errorf("ann's flow: %d, want 1 event and the others hidden:\n%s", status, body)
	}
	if status, body := get(t, u+"/ui/lookback/flows/flow-acl", "Authorization", "Bearer carol"); status != http.StatusForbidden || !strings.Contains(body, "may not read any event") {
		t.Errorf("carol's flow: %d %s", status, body)
	}
	// The selection spans payments, which ann may not read; bob may read
	// it but not write it back.
	if status, body := postForm(t, u+"/ui/lookback/replays", url.Values{"correlation_id": {"flow-acl"}}, ann...); status != http.StatusForbidden || !strings.Contains(body, "payments") {
		t.Errorf("ann replays payments: %d %s", status, body)
	}
	if status, body := postForm(t, u+"/ui/lookback/replays", url.Values{"topic": {"payments"}, "action": {"apply"}}, "Authorization", "Bearer bob"); status != http.StatusForbidden || !strings.Contains(body, "may not WRITE") {
		t.Errorf("bob replays payments into payments: %d %s", status, body)
	}
	if status, body := postForm(t, u+"/ui/lookback/replays", url.Values{"topic": {"orders"}}, ann...); status != http.StatusOK || !strings.Contains(body, `id="dry-run-total">1<`) {
		t.Errorf("ann's dry run of orders: %d %s", status, body)
	}
}
