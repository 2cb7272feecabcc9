package console_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/spoolmq/spool/console"
	"github.com/spoolmq/spool/spooltest"
)

// TestBrowserTopics drives the topics pages in chromium against Spool:
// create a topic through the form, see it in the list, edit its retention
// (a refused value shows the broker's message), delete it with the typed
// confirmation; then the pages at phone width.
func TestBrowserTopics(t *testing.T) {
	addrs := []string{spooltest.Start(t).Addr()}
	_, base := startConsole(t, addrs, console.Config{})
	ctx := tab(t)
	adm := adminClient(t, addrs)
	const name = "browser.orders"

	must(t, "open the list", chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(base+"/ui/topics"), chromedp.WaitVisible(chromedp.ID("topics-table"))))
	open, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("details.create").open`))
	must(t, "read the create section", err)
	if !open {
		must(t, "open the create section", chromedp.Do(ctx, chromedp.Click(chromedp.CSS("details.create summary"))))
	}
	must(t, "create a topic", chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("ct-name"), name),
		chromedp.SendKeys(chromedp.ID("ct-partitions"), "3"),
		chromedp.SendKeys(chromedp.ID("ct-configs"), "retention.ms=86400000"),
		chromedp.Click(chromedp.CSS("#create-topic button[type=submit]")),
		chromedp.WaitVisible(chromedp.ID("partitions-table"))))
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasSuffix(loc, "/ui/topics/"+name) {
		t.Fatalf("after create the browser is on %s", loc)
	}
	if got := text(t, ctx, "#partition-count"); got != "3" {
		t.Fatalf("the new topic shows %s partitions", got)
	}
	if !topicExists(t, addrs, name) {
		t.Fatal("the form did not create the topic")
	}
	produceN(t, addrs, name, 12)
	must(t, "reload", chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("partitions-table"))))
	if got := text(t, ctx, "#record-count"); got != "12" {
		t.Fatalf("the topic page counts %s records", got)
	}

	// A value the broker refuses: its message in the alert region,
	// nothing changed.
	row := `#configs tr[data-config="retention.ms"] `
	must(t, "set a bad retention", chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(row+"input[name=value]"), "a day"),
		chromedp.Click(chromedp.CSS(row+"button[type=submit]"))))
	waitTextHolds(t, ctx, "#flash", "INVALID_CONFIG")
	if v, _ := topicConfig(t, adm, name, "retention.ms"); v != "86400000" {
		t.Fatalf("a refused edit changed retention.ms to %s", v)
	}
	must(t, "set retention", chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(row+"input[name=value]"), "3600000"),
		chromedp.Click(chromedp.CSS(row+"button[type=submit]"))))
	waitTextHolds(t, ctx, "#config-done", "retention.ms set to 3600000")
	if got := text(t, ctx, "#flash"); got != "" {
		t.Errorf("the alert of the refused edit stays after a successful one: %q", got)
	}
	if v, _ := topicConfig(t, adm, name, "retention.ms"); v != "3600000" {
		t.Fatalf("retention.ms after the edit: %s", v)
	}
	screenshot(t, ctx, "topic")

	must(t, "back to the list", chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`nav a[href="/ui/topics"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-topic="`+name+`"]`))))
	if got := text(t, ctx, `tr[data-topic="`+name+`"] td.retention`); got != "1h" {
		t.Fatalf("the list shows retention %q", got)
	}
	// The filter narrows the list as one types (htmx swaps the table).
	must(t, "filter", chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("topic-filter"), "nomatch")))
	waitTextHolds(t, ctx, "#topic-summary", "matching “nomatch”")
	must(t, "clear the filter", chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById("topic-filter").value = ""`), chromedp.SendKeys(chromedp.ID("topic-filter"), "orders")))
	waitTextHolds(t, ctx, "#topic-summary", "matching “orders”")
	screenshot(t, ctx, "topics")

	// Delete: the wrong name is refused in the page, the right one
	// deletes and comes back to the list.
	must(t, "open the topic", chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`tr[data-topic="`+name+`"] a`)),
		chromedp.WaitVisible(chromedp.ID("delete-topic"))))
	must(t, "delete with a wrong name", chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("delete-confirm"), "browser"),
		chromedp.Click(chromedp.CSS("#delete-topic button"))))
	waitTextHolds(t, ctx, "#flash", "Type "+name+" to confirm")
	if !topicExists(t, addrs, name) {
		t.Fatal("a wrong confirmation deleted the topic")
	}
	must(t, "delete", chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("delete-confirm"), name),
		chromedp.Click(chromedp.CSS("#delete-topic button")), chromedp.WaitVisible(chromedp.ID("topic-deleted"))))
	if topicExists(t, addrs, name) {
		t.Fatal("the topic is still there")
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('tr[data-topic="`+name+`"]').length`)); n != 0 {
		t.Fatal("the deleted topic is still listed")
	}

	// At phone width every page fits: nothing wider than the screen but
	// the tables, which scroll in their own box.
	kafkaTopic := "phone.check"
	if status, body, _ := topicsPost(t, base+"/ui/topics", url.Values{"name": {kafkaTopic}}); status != 303 {
		t.Fatalf("create %s: %d %s", kafkaTopic, status, body)
	}
	must(t, "phone width", chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)))
	for _, page := range []string{"/ui/", "/ui/topics", "/ui/topics/" + kafkaTopic} {
		must(t, "open "+page, chromedp.Do(ctx, chromedp.Navigate(base+page), chromedp.WaitVisible(chromedp.ID("main"))))
		w, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
		must(t, "measure "+page, err)
		if w > 390 {
			wide, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > 391).slice(0, 8).map(e => e.tagName + "#" + e.id + "." + e.className + " " + Math.round(e.getBoundingClientRect().right))`))
			t.Logf("wider than the screen: %v", wide)
			t.Errorf("%s is %d px wide at a 390 px viewport", page, w)
		}
		if page == "/ui/topics" {
			screenshot(t, ctx, "topics-phone")
		}
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
