package console_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/spoolmq/spool/console"
	"github.com/spoolmq/spool/internal/kafkatest"
)

// grpWired waits until htmx has processed the form with that id (page
// load, or a swap that brought it): a click before would submit it
// natively.
func grpWired(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	waitFor(t, ctx, "htmx on #"+id, fmt.Sprintf(`!!document.getElementById(%q)?.["htmx-internal-data"]?.initHash`, id))
}

// grpNoOverflow fails t when the page is wider than the viewport (a phone
// would have to scroll sideways).
func grpNoOverflow(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
	if err != nil {
		t.Fatal(err)
	}
	if wide {
		t.Errorf("%s is wider than the viewport", page)
	}
}

// grpBrowserSetup starts kfake with four groups (billing 6 behind on
// orders, shipping caught up, ledger on payments, audit with a running
// member) and a console on it.
func grpBrowserSetup(t *testing.T) ([]string, string) {
	addrs := kafkatest.StartKfake(t)
	kafkatest.CreateTopic(t, addrs, "orders", 2)
	kafkatest.CreateTopic(t, addrs, "payments", 1)
	grpProduce(t, addrs, "orders", 5, 0, 1)
	grpProduce(t, addrs, "payments", 4, 0)
	adm := grpAdmin(t, addrs)
	grpCommit(t, adm, "billing", "orders", map[int32]int64{0: 2, 1: 2}) // lag 6
	grpCommit(t, adm, "shipping", "orders", map[int32]int64{0: 5, 1: 5})
	grpCommit(t, adm, "ledger", "payments", map[int32]int64{0: 3})
	grpJoin(t, addrs, adm, "audit", "payments")
	_, u := startConsole(t, addrs, console.Config{SampleInterval: 100 * time.Millisecond})
	return addrs, u
}

func TestBrowserGroups(t *testing.T) {
	addrs, u := grpBrowserSetup(t)
	ctx := tab(t)

	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(u+"/ui/groups"),
		chromedp.WaitVisible(chromedp.CSS(`#groups tr[data-group="billing"]`))); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "nav a[aria-current=page]"); got != "Groups" {
		t.Fatalf("current nav entry %q", got)
	}
	// Sort by lag (a header link): the most behind first.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`th a[href*="sort=lag"]`)),
		chromedp.WaitVisible(chromedp.CSS(`th[aria-sort=descending] a[href*="sort=lag"]`))); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#groups tbody tr:first-child td:first-child"); got != "billing" {
		t.Fatalf("first by lag: %q", got)
	}
	// Lag in time: billing's oldest unconsumed record is moments old,
	// shipping is caught up.
	waitFor(t, ctx, "billing's lag in time", `Number(document.querySelector('#groups tr[data-group="billing"] td.timelag span')?.dataset.ms) > 0`)
	waitFor(t, ctx, "shipping's lag in time", textIs(`#groups tr[data-group="shipping"] td.timelag`, "0s"))
	// The trend needs two samples; wait for the sparklines before the picture.
	kafkatest.Eventually(t, 30*time.Second, "two samples", func() bool {
		_, body := get(t, u+"/ui/groups")
		return strings.Count(body, `<svg class="spark"`) >= 4
	})
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#groups svg.spark"))); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "groups")

	// The group page: the lag updates over SSE when records are produced.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#groups a[href="/ui/groups/billing"]`)),
		chromedp.WaitVisible(chromedp.ID("total-lag"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the total lag", textIs("#total-lag", "6"))
	grpProduce(t, addrs, "orders", 3, 0)
	waitFor(t, ctx, "the live lag after producing", textIs("#total-lag", "9"))
	waitFor(t, ctx, "the lag of orders/0", textIs(`#lag tr[data-tp="orders/0"] td.lag`, "6"))
	waitFor(t, ctx, "the lag chart", `document.querySelector("#live svg polyline") !== null`)
	waitFor(t, ctx, "the lag in time of orders/0", `Number(document.querySelector('#lag tr[data-tp="orders/0"] td.timelag span')?.dataset.ms) > 0`)
	waitFor(t, ctx, "the group's lag in time", `/^[0-9]+s$/.test((document.querySelector("#time-lag")?.textContent ?? "").trim())`)
	waitFor(t, ctx, "the lag in time chart", `document.querySelectorAll("#live svg polyline").length === 2`)

	// Reset to earliest: the dry run shows current -> new, apply commits it.
	grpWired(t, ctx, "reset-form")
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("reset-mode"), "earliest"),
		chromedp.Click(chromedp.ID("reset-dry")), chromedp.WaitVisible(chromedp.ID("reset-apply"))); err != nil {
		t.Fatal(err)
	}
	grpWired(t, ctx, "apply-form")
	if got := text(t, ctx, `#plan tr[data-tp="orders/0"] td.new`); got != "0" {
		t.Fatalf("dry run new offset of orders/0 %q", got)
	}
	screenshot(t, ctx, "group")
	if got := kafkatest.Committed(t, addrs, "billing", "orders"); fmt.Sprint(got) != "map[0:2 1:2]" {
		t.Fatalf("the dry run committed: %v", got)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("reset-apply")), chromedp.WaitVisible(chromedp.ID("reset-done"))); err != nil {
		t.Fatal(err)
	}
	if got := kafkatest.Committed(t, addrs, "billing", "orders"); fmt.Sprint(got) != "map[0:0 1:0]" {
		t.Fatalf("after apply, committed %v, want 0 and 0", got)
	}
	waitFor(t, ctx, "the live lag after the reset", textIs("#total-lag", "13"))
}

// TestBrowserGroupsExact: the per-partition form, a group with a member,
// and both pages on a phone.
func TestBrowserGroupsExact(t *testing.T) {
	addrs, u := grpBrowserSetup(t)
	ctx := tab(t)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(u+"/ui/groups/billing"),
		chromedp.WaitVisible(chromedp.ID("total-lag"))); err != nil {
		t.Fatal(err)
	}
	grpWired(t, ctx, "exact-form")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#exact summary")),
		chromedp.SetValue(chromedp.ID("xo-1"), "4"), chromedp.Click(chromedp.ID("exact-dry")),
		chromedp.WaitVisible(chromedp.CSS(`#plan tr[data-tp="orders/1"]`))); err != nil {
		t.Fatal(err)
	}
	grpWired(t, ctx, "apply-form")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("reset-apply")), chromedp.WaitVisible(chromedp.ID("reset-done"))); err != nil {
		t.Fatal(err)
	}
	if got := kafkatest.Committed(t, addrs, "billing", "orders"); fmt.Sprint(got) != "map[0:2 1:4]" {
		t.Fatalf("after the exact reset, committed %v", got)
	}

	// A group with a member: the page shows it and says a reset needs
	// the consumers stopped. (The refusal itself, 409, is a handler test:
	// htmx logs every 4xx with console.error, which the tab counts as a
	// page error.)
	if err := chromedp.Do(ctx, chromedp.Navigate(u+"/ui/groups/audit"), chromedp.WaitVisible(chromedp.ID("members")),
		chromedp.WaitVisible(chromedp.ID("reset-active"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the member's client id", textIs("#members tbody td:nth-child(3)", "reset-test"))

	// A phone.
	for _, p := range []string{"groups", "groups/billing"} {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844), chromedp.Navigate(u+"/ui/"+p),
			chromedp.WaitVisible(chromedp.CSS("main h1"))); err != nil {
			t.Fatal(err)
		}
		grpNoOverflow(t, ctx, p+" at 390 px")
		if os.Getenv("CG_PHONE") != "" {
			screenshot(t, ctx, strings.ReplaceAll(p, "/", "-")+"-phone")
		}
	}
}
