package console_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/console"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/lookback"
)

// runReceiptsAgent runs an agent of group on topics that handles every
// event with success and publishes receipts, until the test ends.
func runReceiptsAgent(t *testing.T, addrs []string, group string, topics ...string) {
	t.Helper()
	a, err := agent.New(group, topics, agent.WithBrokers(addrs...), agent.WithReceipts(),
		agent.WithClientOptions(kgo.SessionTimeout(kafkatest.SessionTimeout(addrs)), kgo.HeartbeatInterval(100*time.Millisecond),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond)),
		agent.WithCommitInterval(50*time.Millisecond),
		agent.WithDefaultHandler(func(context.Context, *agent.Message) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent %s: %v", group, err)
		}
	})
}

// TestBrowserLookback: in chromium, search the archive by correlation id,
// open the flow (tree, timeline, the billing group's receipts), open an
// event, and dry-run a replay of the selection; every page also at phone
// width. Screenshots for docs/console.md.
func TestBrowserLookback(t *testing.T) {
	addrs := kafkatest.StartKfake(t)
	kafkatest.CreateTopic(t, addrs, "orders", 2)
	kafkatest.CreateTopic(t, addrs, "payments", 2)
	kafkatest.CreateTopic(t, addrs, agent.DefaultReceiptsTopic, 1)
	kafkatest.CreateTopic(t, addrs, "orders.debug", 1)
	svc, st := startLookback(t, addrs, lookback.Rule{Name: "refund-follows-order", When: lookback.Match{Type: "order.placed"},
		Expect: &lookback.Match{Type: "refund.issued"}, Within: lookback.Duration(time.Millisecond)})
	runReceiptsAgent(t, addrs, "billing", "orders", "payments")
	produceChain(t, addrs, "order-1001", "customer-42")
	produceChain(t, addrs, "order-1002", "customer-7")
	// 6 events and their 6 receipts.
	waitArchived(t, st, 12)
	_, u := startConsole(t, addrs, console.Config{Lookback: svc.Handler()})

	ctx := tab(t)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(u+"/ui/lookback"),
		chromedp.WaitVisible(chromedp.ID("f-correlation_id")),
		chromedp.SendKeys(chromedp.ID("f-correlation_id"), "order-1001"),
		chromedp.Click(chromedp.ID("search")),
	); err != nil {
		t.Fatal(err)
	}
	// The unfiltered page lists order-1001's events too: wait for the
	// search's own page, whose form holds the filter, before reading it.
	waitFor(t, ctx, "the search's page", `new URLSearchParams(location.search).get("correlation_id") === "order-1001" && document.readyState === "complete"`)
	waitTextCond(t, ctx, "#lb-count", textHasPrefix("#lb-count", "3 shown"), `start with "3 shown"`)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#lb-results a[href$="/flows/order-1001"]`))); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "nav a[aria-current=page]"); got != "Lookback" {
		t.Fatalf("current nav entry %q", got)
	}

	// A dry run of the selection: the count and the target, nothing sent.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("dry-run")), chromedp.WaitVisible(chromedp.ID("dry-run-total"))); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#dry-run-total"); got != "3" {
		t.Fatalf("dry run total %q", got)
	}
	if got := text(t, ctx, "#dry-run-target"); !strings.Contains(got, "original topic") {
		t.Fatalf("dry run target %q", got)
	}
	screenshot(t, ctx, "lookback-replay")

	// The flow: three events, the tree, and billing's receipts.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#lb-results a[href$="/flows/order-1001"]`)),
		chromedp.WaitVisible(chromedp.ID("lb-tree"))); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#flow-events"); got != "3" {
		t.Fatalf("flow events %q", got)
	}
	handled, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("#lb-flow td.lb-handled")].map(td => td.textContent.trim()).join("|")`))
	if err != nil {
		t.Fatal(err)
	}
	if handled != "billing: success|billing: success|billing: success" {
		t.Fatalf("receipts in the flow: %q", handled)
	}
	nested, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#lb-tree ul ul ul li").length`))
	if err != nil || nested != 1 {
		t.Fatalf("causation tree depth: %d items at depth 3 (%v), want payment.completed", nested, err)
	}
	screenshot(t, ctx, "lookback-flow")

	// An event of the flow.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#lb-flow a[href*="/lookback/events/orders/"]`)),
		chromedp.WaitVisible(chromedp.ID("lb-body"))); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#lb-body"); !strings.Contains(got, `"customer": "customer-42"`) {
		t.Fatalf("decoded body %q", got)
	}
	if got := text(t, ctx, ".lb-receipts tbody"); !strings.Contains(got, "billing") || !strings.Contains(got, "success") {
		t.Fatalf("event receipts %q", got)
	}
	screenshot(t, ctx, "lookback-event")

	// The rules' holes, linked to their flows. The page shows the holes
	// found when it is served, and the rule engine finds order-1002's once
	// its window has passed and it has checked: reload until it is there.
	hole := `.lb-holes a[href$="/flows/order-1002"]`
	for deadline := time.Now().Add(45 * time.Second); ; {
		if err := chromedp.Do(ctx, chromedp.Navigate(u+"/ui/lookback/rules")); err != nil {
			t.Fatal(err)
		}
		found, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector(`+strconv.Quote(hole)+`) !== null`))
		if err != nil {
			t.Fatal(err)
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the rules page never showed the hole of order-1002")
		}
		time.Sleep(100 * time.Millisecond) // between reloads of a condition poll
	}
	screenshot(t, ctx, "lookback-rules")

	// A replay applied after its dry run, followed to its end.
	if err := chromedp.Do(ctx, chromedp.Navigate(u+"/ui/lookback?correlation_id=order-1002"),
		chromedp.WaitVisible(chromedp.ID("dry-run")),
		chromedp.Click(chromedp.CSS(`input[name=target][value=topic]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=to_topic]`), "orders.debug"),
		chromedp.Click(chromedp.ID("dry-run")), chromedp.WaitVisible(chromedp.ID("apply-replay")),
	); err != nil {
		t.Fatal(err)
	}
	// htmx wires the swapped-in apply form once the swap has settled; a
	// click before that would submit it natively.
	htmxSettled(t, ctx)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("apply-replay"))); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	err = chromedp.Do(wctx, chromedp.WaitVisible(chromedp.CSS(`.lb-replay-state[data-status=done]`)))
	wcancel()
	if err != nil {
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("replay-result").outerHTML`))
		t.Fatalf("replay not done: %v\n%s", err, html)
	}
	if got := text(t, ctx, "#replay-done"); got != "3" {
		t.Fatalf("replayed %q events, want 3", got)
	}
	if n := len(kafkatest.ReadAll(t, addrs, "orders.debug")); n != 3 {
		t.Fatalf("orders.debug has %d records, want the 3 replayed", n)
	}

	// Every lookback page at phone width, without a console error (the
	// tab fails the test on one) and without a horizontal scrollbar on
	// the page itself (wide tables scroll in their own box).
	for _, p := range []string{"lookback?correlation_id=order-1002", "lookback/flows/order-1002", "lookback/rules", "lookback/replays"} {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844), chromedp.Navigate(u+"/ui/"+p), chromedp.WaitVisible(chromedp.CSS("main h1"))); err != nil {
			t.Fatalf("%s at 390 px: %v", p, err)
		}
		wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
		if err != nil || wide {
			t.Errorf("%s at 390 px: the page scrolls sideways (%v)", p, err)
		}
		if strings.HasPrefix(p, "lookback/flows/") {
			screenshot(t, ctx, "lookback-phone")
		}
	}
}

// htmxSettled waits until no htmx request, swap or settle is under way in
// the page.
func htmxSettled(t *testing.T, ctx context.Context) {
	t.Helper()
	waitFor(t, ctx, "htmx to settle", `document.querySelector(".htmx-request, .htmx-swapping, .htmx-settling, .htmx-added") === null`)
}
