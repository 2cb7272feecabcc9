package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/gateway"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/internal/testenv"
	"github.com/spoolmq/spool/spooltest"
)

// setup starts a broker, a gateway, the order service and the page server.
func setup(t *testing.T) (gatewayURL, pageURL string) {
	t.Helper()
	srv := spooltest.Start(t, spooltest.WithPartitions(2))
	addrs := []string{srv.Addr()}
	kafkatest.CreateTopic(t, addrs, "orders", 2)
	g, err := gateway.New(gateway.Config{Brokers: addrs, StorePath: filepath.Join(t.TempDir(), "gw.db"),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	gws := httptest.NewServer(g.Handler())
	done := make(chan error, 1)
	go func() {
		done <- Service(ctx, addrs, "orders", kgo.SessionTimeout(time.Second), kgo.HeartbeatInterval(100*time.Millisecond),
			kgo.FetchMaxWait(100*time.Millisecond), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	}()
	u, _ := url.Parse(gws.URL)
	page := httptest.NewServer(Handler(u))
	t.Cleanup(func() {
		page.CloseClientConnections()
		gws.CloseClientConnections()
		page.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("order service: %v", err)
		}
		g.Close()
		gws.Close()
	})
	return gws.URL, page.URL
}

// TestPlaceOrder: the client's POST gets 202, its Prefer: wait poll returns
// the service's reply; a poison order fails with the dead-letter reason.
func TestPlaceOrder(t *testing.T) {
	gw, _ := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := PlaceOrder(ctx, gw, Order{Item: "tea", Quantity: 3}, "order-1")
	if err != nil {
		t.Fatal(err)
	}
	var p Placed
	if err := json.Unmarshal(st.Result, &p); err != nil || st.State != "succeeded" || p.Item != "tea" || p.Status != "placed" || !strings.HasPrefix(p.OrderID, "ord-") {
		t.Fatalf("order: %+v %s %v", st, st.Result, err)
	}
	again, err := PlaceOrder(ctx, gw, Order{Item: "tea", Quantity: 3}, "order-1")
	if err != nil || again.ID != st.ID {
		t.Fatalf("retried submit: %+v %v, want request %s again", again, err, st.ID)
	}
	bad, err := PlaceOrder(ctx, gw, Order{Item: "tea", Quantity: 0}, "order-2")
	if err != nil || bad.State != "failed" || !strings.Contains(bad.Error, "quantity must be at least 1") {
		t.Fatalf("poison order: %+v %v", bad, err)
	}
}

// TestBrowserReceivesResult drives headless chromium: the page submits an
// order and shows the result it receives over Server-Sent Events.
func TestBrowserReceivesResult(t *testing.T) {
	chromium := testenv.LookPath(t, "chromium", "apt-get install chromium")
	_, page := setup(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	defer cancel()
	err := chromedp.Do(ctx,
		chromedp.Navigate(page+"/"),
		chromedp.WaitVisible(chromedp.ID("place")),
		chromedp.Click(chromedp.ID("place")),
		chromedp.WaitVisible(chromedp.CSS("#result.final")),
	)
	logText, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("log")))
	if err != nil {
		t.Fatalf("browser: %v (log so far %q)", err, logText)
	}
	result, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("result")))
	if err != nil {
		t.Fatal(err)
	}
	state, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("state")))
	if err != nil {
		t.Fatal(err)
	}
	if state != "succeeded" || !strings.HasPrefix(result, "ord-") || !strings.HasSuffix(result, " placed") ||
		!strings.Contains(logText, "202 Accepted") || !strings.Contains(logText, "status: succeeded") {
		t.Fatalf("page shows state %q result %q log %q", state, result, logText)
	}
}
