package console_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/spoolmq/spool/console"
	"github.com/spoolmq/spool/internal/kafkatest"
)

// msgShownInPage is the keys of the records the page shows, in order.
const msgShownInPage = `[...document.querySelectorAll("#msg-table tr.msg-row td.msg-key")].map(td => td.textContent.trim()).join("|")`

// TestBrowserMessages: in chromium, pick a topic, produce a record through
// the form, find it by key and by payload text with a broker scan (its
// progress streamed, then the results) and through the lookback archive,
// open its decoded view; the pages also at phone width. Screenshots for
// docs/console.md.
func TestBrowserMessages(t *testing.T) {
	addrs := kafkatest.StartKfake(t)
	kafkatest.CreateTopic(t, addrs, "orders", 2)
	svc, st := startLookback(t, addrs)
	msgProduceNumbered(t, addrs, "orders", 30, 2)
	_, plain := startConsole(t, addrs, console.Config{})
	_, withLB := startConsole(t, addrs, console.Config{Lookback: svc.Handler()})

	ctx := tab(t)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(plain+"/ui/messages"),
		chromedp.WaitVisible(chromedp.ID("pick-topic")),
		chromedp.SetValue(chromedp.ID("pick-topic"), "orders"),
		chromedp.Click(chromedp.ID("pick")),
		chromedp.WaitVisible(chromedp.CSS("#msg-table tr.msg-row")),
	); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "nav a[aria-current=page]"); got != "Messages" {
		t.Fatalf("current nav entry %q", got)
	}
	if got := text(t, ctx, "#msg-count"); got != "30" {
		t.Fatalf("the newest page shows %q records, want 30", got)
	}

	// Produce through the form: JSON, two headers, a key.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("p-key"), "order-4242"),
		chromedp.SetValue(chromedp.ID("p-encoding"), "json"),
		chromedp.SetValue(chromedp.ID("p-headers"), "ce_type=order.placed\nce_id=evt-4242\ncorrelation_id=c-4242"),
		chromedp.SetValue(chromedp.ID("p-value"), `{"customer":"ada","total":99.5}`),
		chromedp.Click(chromedp.ID("produce")),
		chromedp.WaitVisible(chromedp.ID("produced")),
	); err != nil {
		t.Fatal(err)
	}
	recs := kafkatest.ReadAll(t, addrs, "orders")
	if len(recs) != 31 {
		t.Fatalf("%d records after the produce, want 31", len(recs))
	}

	// Find it by key: a broker scan whose progress streams, then the
	// results.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("f-key"), "order-4242"), chromedp.Click(chromedp.ID("browse")),
		chromedp.WaitVisible(chromedp.CSS("#scan-result #msg-results"))); err != nil {
		t.Fatal(err)
	}
	if got, err := chromedp.Run(ctx, chromedp.Evaluate[string](msgShownInPage)); err != nil || got != "order-4242" {
		t.Fatalf("scan by key shows %q (%v)", got, err)
	}
	if got := text(t, ctx, "#scan-status"); !strings.Contains(got, "Scan finished") || !strings.Contains(got, "31 of 31 records read") {
		t.Fatalf("scan status %q", got)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#msg-table tr.msg-row details summary")),
		chromedp.WaitVisible(chromedp.CSS("#msg-table .msg-envelope"))); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#msg-table pre.msg-body"); !strings.Contains(got, `"customer": "ada"`) {
		t.Fatalf("the decoded JSON value %q", got)
	}
	if got := text(t, ctx, "#msg-table .msg-envelope"); !strings.Contains(got, "evt-4242") || !strings.Contains(got, "c-4242") {
		t.Fatalf("the envelope %q", got)
	}
	screenshot(t, ctx, "messages-scan")

	// By payload text, scanning the broker.
	if err := chromedp.Do(ctx, chromedp.Navigate(plain+"/ui/topics/orders/messages?q=ada"),
		chromedp.WaitVisible(chromedp.CSS("#scan-result #msg-results"))); err != nil {
		t.Fatal(err)
	}
	if got, err := chromedp.Run(ctx, chromedp.Evaluate[string](msgShownInPage)); err != nil || got != "order-4242" {
		t.Fatalf("scan by payload text shows %q (%v)", got, err)
	}

	// The same two searches through the lookback archive's index.
	waitArchived(t, st, 31)
	for _, q := range []string{"key=order-4242", "q=ada"} {
		if err := chromedp.Do(ctx, chromedp.Navigate(withLB+"/ui/topics/orders/messages?"+q),
			chromedp.WaitVisible(chromedp.CSS(`#msg-results[data-source="lookback"]`))); err != nil {
			t.Fatalf("%s with the archive: %v", q, err)
		}
		if got, err := chromedp.Run(ctx, chromedp.Evaluate[string](msgShownInPage)); err != nil || got != "order-4242" {
			t.Fatalf("%s through the archive shows %q (%v)", q, got, err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#msg-table tr.msg-row details summary")),
		chromedp.WaitVisible(chromedp.CSS("#msg-table .msg-envelope"))); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "messages-lookback")

	// The newest page with a record opened, for the docs.
	if err := chromedp.Do(ctx, chromedp.Navigate(plain+"/ui/topics/orders/messages?limit=20"),
		chromedp.WaitVisible(chromedp.CSS("#msg-table tr.msg-row")),
		chromedp.Click(chromedp.CSS("#msg-table tr.msg-row details summary")),
		chromedp.WaitVisible(chromedp.CSS("#msg-table .msg-envelope"))); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "messages")

	// Phone width: no page-wide horizontal scrollbar (tables scroll in
	// their own box), no console error.
	for _, p := range []string{plain + "/ui/messages", plain + "/ui/topics/orders/messages?limit=20",
		plain + "/ui/topics/orders/messages?q=ada", withLB + "/ui/topics/orders/messages?key=order-4242"} {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844), chromedp.Navigate(p), chromedp.WaitVisible(chromedp.CSS("main h1"))); err != nil {
			t.Fatalf("%s at 390 px: %v", p, err)
		}
		if strings.Contains(p, "q=ada") {
			if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#scan-result #msg-results"))); err != nil {
				t.Fatal(err)
			}
		}
		wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
		if err != nil || wide {
			t.Errorf("%s at 390 px: the page scrolls sideways (%v)", p, err)
		}
		if strings.HasSuffix(p, "key=order-4242") {
			if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#msg-table tr.msg-row details summary")),
				chromedp.WaitVisible(chromedp.CSS("#msg-table .msg-envelope"))); err != nil {
				t.Fatal(err)
			}
			if _, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelector("#msg-results .table-wrap").scrollLeft = 0`)); err != nil {
				t.Fatal(err)
			}
			screenshot(t, ctx, "messages-phone")
		}
	}
}
