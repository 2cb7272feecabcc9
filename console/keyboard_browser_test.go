package console_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/spoolmq/spool/console"
	"github.com/spoolmq/spool/internal/kafkatest"
)

// kbFocused describes the focused element as "tag#id" or "tag:text", with
// whether it is marked: it matches :focus-visible and has an outline.
const kbFocused = `(() => {
	const el = document.activeElement;
	if (!el || el === document.body) return {name: "body", marked: false};
	const tag = el.tagName.toLowerCase();
	const name = el.id ? tag + "#" + el.id : tag + ":" + el.textContent.trim().replace(/\s+/g, " ").slice(0, 40);
	const cs = getComputedStyle(el);
	const marked = el.matches(":focus-visible") && cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) >= 2;
	return {name, marked};
})()`

type kbFocus struct {
	Name   string `json:"name"`
	Marked bool   `json:"marked"`
}

// kbPress sends key to the focused element and returns what has the focus
// then.
func kbPress(t *testing.T, ctx context.Context, key string) kbFocus {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.KeyEvent(key)); err != nil {
		t.Fatalf("key %q: %v", key, err)
	}
	f, err := chromedp.Run(ctx, chromedp.Evaluate[kbFocus](kbFocused))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// kbTabThrough presses Tab once for each of want and checks that the focus
// lands on each, in order, visibly marked.
func kbTabThrough(t *testing.T, ctx context.Context, page string, want ...string) {
	t.Helper()
	for i, w := range want {
		f := kbPress(t, ctx, kb.Tab)
		if f.Name != w {
			t.Fatalf("%s: Tab %d focuses %q, want %q (order: %s)", page, i+1, f.Name, w, strings.Join(want, ", "))
		}
		if !f.Marked {
			t.Errorf("%s: %s has the focus without a visible outline (:focus-visible)", page, f.Name)
		}
	}
}

// TestBrowserKeyboard: the groups page with the keyboard alone. Tab goes
// from the skip link through the navigation, the filter form and its
// button to the sortable headers, every control marked when focused; the
// skip link jumps to the content; typing and Enter filter the list; and
// on every page of the navigation each control Tab reaches is marked.
func TestBrowserKeyboard(t *testing.T) {
	addrs := kafkatest.StartKfake(t)
	kafkatest.CreateTopic(t, addrs, "orders", 1)
	grpProduce(t, addrs, "orders", 5, 0)
	adm := grpAdmin(t, addrs)
	grpCommit(t, adm, "billing", "orders", map[int32]int64{0: 2})
	grpCommit(t, adm, "shipping", "orders", map[int32]int64{0: 5})
	_, u := startConsole(t, addrs, console.Config{})
	ctx := tab(t)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(u+"/ui/groups"),
		chromedp.WaitVisible(chromedp.CSS(`#groups tr[data-group="billing"]`))); err != nil {
		t.Fatal(err)
	}

	nav := []string{"a:Skip to content", "a:Spool", "a:Overview", "a:Topics", "a:Messages", "a:Groups",
		"a:Dead letters", "a:Lookback", "a:Requests"}
	form := []string{"input#groups-q", "select#groups-state", "input#groups-minlag", "button:Filter"}
	heads := []string{"a:Group ▲", "a:State", "a:Members", "a:Lag", "a:Lag in time", "a:billing", "a:shipping"}
	kbTabThrough(t, ctx, "groups", append(append(append([]string(nil), nav...), form...), heads...)...)

	// The skip link: Enter on it puts the focus in the content, so the
	// next Tab is the form's first field.
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#groups tr[data-group="billing"]`))); err != nil {
		t.Fatal(err)
	}
	kbTabThrough(t, ctx, "groups", nav[0])
	if f := kbPress(t, ctx, kb.Enter); f.Name != "main#main" {
		t.Fatalf("Enter on the skip link focuses %q, want main#main", f.Name)
	}
	kbTabThrough(t, ctx, "groups after the skip link", form[0])

	// Type a name and submit with Enter on the Filter button.
	for _, k := range "bill" {
		kbPress(t, ctx, string(k))
	}
	kbTabThrough(t, ctx, "groups", form[1:]...)
	screenshot(t, ctx, "keyboard")
	kbPress(t, ctx, kb.Enter)
	waitFor(t, ctx, "the list filtered from the keyboard", `location.search.includes("q=bill") && document.querySelectorAll("#groups tr[data-group]").length === 1`)

	// Every page of the navigation: whatever Tab reaches (up to 40
	// stops) is visibly marked.
	for _, p := range []string{"", "topics", "messages", "groups/billing", "deadletters", "lookback", "requests"} {
		if err := chromedp.Do(ctx, chromedp.Navigate(u+"/ui/"+p), chromedp.WaitVisible(chromedp.CSS("main h1"))); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for range 40 {
			f := kbPress(t, ctx, kb.Tab)
			if f.Name == "body" || seen[f.Name] { // past the end, or around again
				break
			}
			seen[f.Name] = true
			if !f.Marked {
				t.Errorf("/ui/%s: %s has the focus without a visible outline (:focus-visible)", p, f.Name)
			}
		}
		if len(seen) < len(nav) {
			t.Errorf("/ui/%s: Tab reaches %d controls, fewer than the navigation's %d", p, len(seen), len(nav))
		}
	}
}
