package console_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/console"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/spooltest"
)

func TestOverview(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "ov-a", 3)
		kafkatest.CreateTopic(t, addrs, "ov-b", 2)
		_, url := startConsole(t, addrs, console.Config{})
		status, body := get(t, url+"/ui/")
		if status != http.StatusOK {
			t.Fatalf("GET /ui/: %d %s", status, body)
		}
		for _, want := range []string{`id="topic-count">2<`, "Produce rate", `href="/ui/static/console.css"`} {
			if !strings.Contains(body, want) {
				t.Errorf("overview lacks %q", want)
			}
		}
		status, body = get(t, url+"/ui/no-such-page")
		if status != http.StatusNotFound || !strings.Contains(body, "no page /ui/no-such-page") {
			t.Fatalf("unknown page: %d %s", status, body)
		}
		status, body = get(t, url+"/ui/no-such-page", "Accept", "application/json")
		if status != http.StatusNotFound || !strings.Contains(body, `"status":404`) {
			t.Fatalf("unknown page as JSON: %d %s", status, body)
		}
	})
}

func TestConsoleBeforeStart(t *testing.T) {
	c, err := console.New(console.Config{Brokers: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptestGet(c.Handler(), "/ui/")
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "not connected") {
		t.Fatalf("before Start: %d %s", rec.Code, rec.Body)
	}
	if _, err := console.New(console.Config{BasePath: "ui"}); err == nil {
		t.Fatal("base path without slashes accepted")
	}
}

func TestBrowserOverview(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) { c.Registerer = reg }))
	addrs := []string{srv.Addr()}
	kafkatest.CreateTopic(t, addrs, "ov-browser", 2)
	_, url := startConsole(t, addrs, console.Config{Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})})
	// Produce and fetch across a few samples, until the page draws its four
	// broker-metric lines (a request rate needs its API's counter in two
	// scrapes, so fetches too).
	kafkatest.Eventually(t, 30*time.Second, "the broker metrics' four lines", func() bool {
		produceN(t, addrs, "ov-browser", 20)
		kafkatest.ReadAll(t, addrs, "ov-browser")
		_, body := get(t, url+"/ui/")
		return brokerMetricLines(body) == 4 && strings.Contains(body, "records produced/s now")
	})
	ctx := tab(t)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(url+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS("#topic-count"))); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#topic-count"); got != "1" {
		t.Fatalf("topic count %q", got)
	}
	if got := text(t, ctx, "nav a[aria-current=page]"); got != "Overview" {
		t.Fatalf("current nav entry %q", got)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#broker-metrics svg polyline").length`)); err != nil || n != 4 {
		t.Fatalf("broker metrics charts draw %d lines (%v), want p50, p99, Produce, Fetch", n, err)
	}
	if got := text(t, ctx, `#disks-table tr[data-broker="0"] td.used`); !strings.HasSuffix(got, "%") {
		t.Fatalf("disk use of broker 0: %q", got)
	}
	screenshot(t, ctx, "overview")
}

// brokerMetricLines counts the lines drawn in the overview's broker
// metrics section.
func brokerMetricLines(body string) int {
	_, sec, _ := strings.Cut(body, `id="broker-metrics"`)
	sec, _, _ = strings.Cut(sec, "<h2")
	return strings.Count(sec, "<polyline")
}
