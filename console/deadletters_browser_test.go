package console_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/console"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/spooltest"
)

// dlqNoHorizontalScroll fails t when the page is wider than the viewport
// (tables scroll inside their own boxes; the page must not).
func dlqNoHorizontalScroll(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	w, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
	if err != nil {
		t.Fatal(err)
	}
	if w[0] > w[1] {
		t.Errorf("%s: the page is %d px wide in a %d px viewport", what, w[0], w[1])
	}
}

// The scenario: 1,000 dead letters of one reason among 1,500 of
// two reasons and several keys, redriven by reason from the browser (dry
// run, then apply), then read back with a Kafka consumer; then a slow
// redrive of the other 500, cancelled.
func TestBrowserDeadLetters(t *testing.T) {
	srv := spooltest.Start(t, spooltest.WithPartitions(4))
	addrs := []string{srv.Addr()}
	kafkatest.CreateTopic(t, addrs, "orders", 4)
	kafkatest.CreateTopic(t, addrs, "orders.dlq", 4)
	// Two of every three are retries-exhausted: 1,000 of them, 500 dead-letter.
	recs := produceDLQ(t, addrs, "orders.dlq", "orders", 1500, 12,
		agent.ReasonRetriesExhausted, agent.ReasonRetriesExhausted, agent.ReasonDeadLetter)
	_, u := startConsole(t, addrs, console.Config{})
	ctx := tab(t)

	if err := chromedp.Do(ctx, chromedp.Navigate(u+"/ui/deadletters"), chromedp.WaitVisible(chromedp.CSS("#dlq-list"))); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#dlq-list .dlq-depth"); got != "1,500" {
		t.Fatalf("depth of orders.dlq: %q", got)
	}
	screenshot(t, ctx, "deadletters")

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#dlq-list a[href$="/orders.dlq"]`)), chromedp.WaitVisible(chromedp.CSS("#by-reason"))); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "#dlq-depth", "1,500")
	// The reason grouping is a filter: click retries-exhausted.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#by-reason a[href*="reason=retries-exhausted"]`))); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "#dlq-matched", "1000")
	htmxReady(t, ctx, "#dry-run")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("dry-run"))); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "#plan-count", "1000")
	if got := text(t, ctx, "#plan-targets td"); got != "orders" {
		t.Fatalf("dry run target %q", got)
	}
	screenshot(t, ctx, "deadletters-dryrun")
	if got := kafkatest.ReadAll(t, addrs, "orders"); len(got) != 0 {
		t.Fatalf("the dry run produced %d records", len(got))
	}

	htmxReady(t, ctx, "#apply")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("apply")), chromedp.WaitVisible(chromedp.ID("redrive-done"))); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#report-redriven"); got != "1000" {
		t.Fatalf("redriven %q", got)
	}
	if got := text(t, ctx, "#report-failed"); got != "0" {
		t.Fatalf("failed %q", got)
	}
	id := text(t, ctx, "#redrive-job h3 code")
	screenshot(t, ctx, "deadletters-redrive")

	var want []*kgo.Record
	for _, r := range recs {
		if v, _ := dlqHeader(r, "dlq_reason"); v == agent.ReasonRetriesExhausted {
			want = append(want, r)
		}
	}
	redriven := kafkatest.ReadAll(t, addrs, "orders")
	dlqCheckRedriven(t, redriven, want, id)
	dlqCheckSources(t, addrs, redriven, want)

	// Reloaded, the page marks the 1,000 as redriven; a new dry run skips them.
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("dlq-redriven"))); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "#dlq-redriven", "1000")
	htmxReady(t, ctx, "#dry-run")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("dry-run"))); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "#plan-already", "1000")
	dlqNoHorizontalScroll(t, ctx, "1280 px")

	// The other reason, slowly: the progress polls, Cancel stops it, the
	// report counts exactly what reached the topic.
	if err := chromedp.Do(ctx, chromedp.Navigate(u+"/ui/deadletters/orders.dlq?reason=dead-letter"),
		chromedp.WaitVisible(chromedp.ID("redrive-rate")), chromedp.SetValue(chromedp.ID("redrive-rate"), "20")); err != nil {
		t.Fatal(err)
	}
	htmxReady(t, ctx, "#dry-run")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("dry-run"))); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "#plan-count", "500")
	htmxReady(t, ctx, "#apply")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("apply")), chromedp.WaitVisible(chromedp.ID("cancel-redrive"))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`+(document.querySelector("#redrive-job progress")||{}).value > 0`)); err != nil {
		t.Fatalf("the progress bar does not move: %v", err)
	}
	screenshot(t, ctx, "deadletters-progress")
	// The polls replace the progress line only: the Cancel button stays the
	// element htmx wired (a swapped-in one is wired only once its swap
	// settles, and a click before that is lost).
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(window.cancelButton = document.getElementById("cancel-redrive"),
		window.progressLine = document.getElementById("redrive-progress"), true)`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "a poll of the progress", `document.getElementById("redrive-progress") !== window.progressLine`)
	if same, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("cancel-redrive") === window.cancelButton`)); err != nil || !same {
		t.Fatalf("a poll of the progress replaced the Cancel button (%v)", err)
	}
	htmxReady(t, ctx, "#cancel-redrive")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("cancel-redrive")), chromedp.WaitVisible(chromedp.ID("redrive-done"))); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#redrive-done strong"); got != "Cancelled:" {
		t.Fatalf("after cancel: %q", got)
	}
	n, err := strconv.Atoi(text(t, ctx, "#report-redriven"))
	if err != nil || n >= 500 {
		t.Fatalf("cancelled redrive reports %v redriven", text(t, ctx, "#report-redriven"))
	}
	if got := kafkatest.ReadAll(t, addrs, "orders"); len(got) != 1000+n {
		t.Fatalf("orders has %d records, want 1,000 + the %d the cancelled redrive reports", len(got), n)
	}

	// A phone.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Reload(),
		chromedp.WaitVisible(chromedp.ID("dry-run"))); err != nil {
		t.Fatal(err)
	}
	dlqNoHorizontalScroll(t, ctx, "390 px")
	screenshot(t, ctx, "deadletters-phone")
	if err := chromedp.Do(ctx, chromedp.Navigate(u+"/ui/deadletters"), chromedp.WaitVisible(chromedp.CSS("#dlq-list"))); err != nil {
		t.Fatal(err)
	}
	dlqNoHorizontalScroll(t, ctx, "390 px, list")
}

// dlqCheckSources checks, with kadm, that the original topic holds as many
// records as were redriven, and that each redriven record names the
// dead letter it came from (spool_redrive_of), went to that dead letter's
// original partition, and that no dead letter was sent twice.
func dlqCheckSources(t *testing.T, addrs []string, got, want []*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := grpAdmin(t, addrs).ListEndOffsets(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != int64(len(want)) {
		t.Fatalf("orders' end offsets sum to %d, want the %d redriven", total, len(want))
	}
	src := map[string]*kgo.Record{}
	for _, r := range want {
		src[fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)] = r
	}
	for _, r := range got {
		of, _ := dlqHeader(r, console.HeaderRedriveOf)
		d, ok := src[of]
		if !ok {
			t.Fatalf("record %s: spool_redrive_of %q names no dead letter of the selection (or one sent twice)", r.Value, of)
		}
		delete(src, of)
		if string(d.Value) != string(r.Value) || string(d.Key) != string(r.Key) {
			t.Fatalf("record %s/%s comes from dead letter %s holding %s/%s", r.Key, r.Value, of, d.Key, d.Value)
		}
		if p, _ := dlqHeader(d, "dlq_original_partition"); p != strconv.Itoa(int(r.Partition)) {
			t.Fatalf("record %s went to partition %d, its original partition is %s", r.Value, r.Partition, p)
		}
	}
}
