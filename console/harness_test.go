package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/spoolmq/spool/console"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/internal/testenv"
)

// startConsole starts a console on addrs, mounted on /ui/ of an httptest
// server, and returns the server's URL. cfg's Brokers are set to addrs.
func startConsole(t testing.TB, addrs []string, cfg console.Config) (*console.Console, string) {
	t.Helper()
	cfg.Brokers = addrs
	if cfg.SampleInterval == 0 {
		cfg.SampleInterval = 200 * time.Millisecond
	}
	c, err := console.New(cfg)
	if err != nil {
		t.Fatalf("console.New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("console.Start: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ui/", c.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		c.Close()
	})
	return c, srv.URL
}

// get fetches url and returns its status and body.
func get(t testing.TB, url string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The browser: one headless chromium for the package's tests (started by
// the first test that needs it, stopped by TestMain), a tab per test.
var (
	browserOnce   sync.Once
	browserCtx    context.Context
	browserCancel context.CancelFunc = func() {}
	browserErr    string
)

func TestMain(m *testing.M) {
	code := m.Run()
	browserCancel()
	os.Exit(code)
}

// tab opens a browser tab for t, at most two minutes long (a browser
// test shares two cores with the other packages' tests in CI). Every error the
// page logs or throws (console.error, an uncaught exception, a resource
// that failed to load) fails t at its end.
func tab(t *testing.T) context.Context {
	t.Helper()
	chromium := testenv.LookPath(t, "chromium", "apt-get install chromium")
	browserOnce.Do(func() {
		dir, err := os.MkdirTemp("", "spool-console-chromium-")
		if err != nil {
			browserErr = err.Error()
			return
		}
		actx, acancel := chromedp.NewExecAllocator(context.Background(),
			chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
			chromedp.NoFirstRun, chromedp.Flag("disable-quic", true),
			chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true), chromedp.UserDataDir(dir), chromedp.WindowSize(1280, 900))
		bctx, bcancel := chromedp.NewContext(actx)
		// The first Run starts the browser; it lives as long as bctx.
		if err := chromedp.Do(bctx); err != nil {
			browserErr = err.Error()
		}
		browserCtx = bctx
		browserCancel = func() { bcancel(); acancel(); os.RemoveAll(dir) }
	})
	if browserErr != "" {
		t.Fatalf("chromium: %s", browserErr)
	}
	tctx, tcancel := chromedp.NewContext(browserCtx)
	var mu sync.Mutex
	var errs []string
	if err := chromedp.Listen(tctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			errs = append(errs, "exception: "+msg)
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError && !expectedRefusal(e) {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				errs = append(errs, "console.error: "+strings.Join(parts, " "))
			}
		case *log.EventEntryAdded:
			if e.Entry.Level == log.EntryLevelError && !expectedHTTPError(e.Entry) {
				errs = append(errs, "log: "+e.Entry.Text+" "+e.Entry.URL)
			}
		}
	}); err != nil {
		tcancel()
		t.Fatalf("browser tab: %v", err)
	}
	if _, err := chromedp.Call(tctx, log.Enable, cdp.Empty{}); err != nil {
		tcancel()
		t.Fatalf("browser tab: log.enable: %v", err)
	}
	if _, err := chromedp.Call(tctx, runtime.Enable, cdp.Empty{}); err != nil {
		tcancel()
		t.Fatalf("browser tab: runtime.enable: %v", err)
	}
	ctx, cancel := context.WithTimeout(tctx, 2*time.Minute)
	t.Cleanup(func() {
		cancel()
		tcancel()
		mu.Lock()
		defer mu.Unlock()
		for _, e := range errs {
			t.Errorf("browser: %s", e)
		}
	})
	return ctx
}

// expectedHTTPError: a 4xx answer to an action is how the console refuses
// it (the page shows the problem's detail); chromium logs it as a network
// error, which is not a page error.
func expectedHTTPError(e *log.Entry) bool {
	return e.Source == log.EntrySourceNetwork && strings.Contains(e.Text, "status of 4")
}

// expectedRefusal: htmx also logs a 4xx answer to an action with
// console.error ("Response Status Error Code 400 from ..."); the page shows
// the problem's detail, so it is not a page error either.
func expectedRefusal(e *runtime.EventConsoleAPICalled) bool {
	return len(e.Args) > 0 && strings.Contains(string(e.Args[0].Value), "Response Status Error Code 4")
}

// screenshot saves the page as NAME.png: into $SPOOL_SCREENSHOTS when set
// (`SPOOL_SCREENSHOTS=$PWD/docs/console go test ./console` refreshes the
// docs' pictures), else into the test's temporary directory.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("SPOOL_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
}

// text returns the text of the first element matching the CSS selector.
func text(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("text of %s: %v", css, err)
	}
	return strings.TrimSpace(s)
}

// httptestGet serves one GET of path by h.
func httptestGet(h http.Handler, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

// startKfakeWithTopics starts kfake with the topics (2 partitions each).
func startKfakeWithTopics(t testing.TB, topics ...string) []string {
	t.Helper()
	addrs := kafkatest.StartKfake(t)
	for _, tp := range topics {
		kafkatest.CreateTopic(t, addrs, tp, 2)
	}
	return addrs
}

// htmxReady waits until htmx has wired the element matching css (the
// element itself or the form or element around it that carries its hx-*
// attribute) and no htmx request, swap or settle is under way: a click on
// an element htmx has not processed yet (it was just swapped in) would
// submit its form natively.
func htmxReady(t *testing.T, ctx context.Context, css string) {
	t.Helper()
	js := fmt.Sprintf(`(() => {
		const e = document.querySelector(%q);
		if (!e) return false;
		const f = e.closest("[hx-post],[hx-get],[hx-put],[hx-patch],[hx-delete]") || e;
		const d = f["htmx-internal-data"];
		return !!(d && d.initHash) && document.querySelector(".htmx-request, .htmx-swapping, .htmx-settling") === null;
	})()`, css)
	waitFor(t, ctx, "htmx to wire "+css, js)
}

// waitFor waits until the JavaScript expression is true in the page,
// polling again in the new page when a click navigates away meanwhile.
func waitFor(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(time.Until(deadline))))
		if err == nil {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("waiting for %s (%s): %v", what, expr, err)
		}
	}
}

// textIs is a JavaScript condition: the element's trimmed text is want.
// Live regions are swapped as a whole, so a test polls their text rather
// than reading a node the next event may replace.
func textIs(css, want string) string {
	return fmt.Sprintf(`(document.querySelector(%q)?.textContent ?? "").trim() === %q`, css, want)
}

// textHasPrefix is a JavaScript condition: the element's trimmed text
// starts with prefix.
func textHasPrefix(css, prefix string) string {
	return fmt.Sprintf(`(document.querySelector(%q)?.textContent ?? "").trim().startsWith(%q)`, css, prefix)
}

// textHolds is a JavaScript condition: the element's text holds want.
func textHolds(css, want string) string {
	return fmt.Sprintf(`(document.querySelector(%q)?.textContent ?? "").includes(%q)`, css, want)
}

// waitText waits until the element's trimmed text is want.
func waitText(t *testing.T, ctx context.Context, css, want string) {
	t.Helper()
	waitTextCond(t, ctx, css, textIs(css, want), "read "+strconv.Quote(want))
}

// waitTextHolds waits until the element's text holds want.
func waitTextHolds(t *testing.T, ctx context.Context, css, want string) {
	t.Helper()
	waitTextCond(t, ctx, css, textHolds(css, want), "hold "+strconv.Quote(want))
}

// waitTextCond waits until expr, a condition on the element, is true, and
// says what the element reads when it never is.
func waitTextCond(t *testing.T, ctx context.Context, css, expr, what string) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		// A poll does not survive a navigation: poll again in the new page.
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(time.Until(deadline))))
		if err == nil {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q)?.textContent ?? "(none)").trim()`, css)))
			t.Fatalf("waiting for %s to %s: %v (it reads %q)", css, what, err, got)
		}
	}
}
