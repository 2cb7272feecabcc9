package console_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/console"
	"github.com/spoolmq/spool/internal/kafkatest"
)

// These tests need what only kfake offers of the two test clusters: a
// hook on its fetches, and transactions (Spool has none; Kafka and
// Redpanda, which the console also runs against, do).

// syncBuffer is a log destination the test reads while the console
// writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// heldFetches starts a kfake cluster with topic orders (10 records of
// msgProduceNumbered) that holds every fetch until the test ends;
// fetching is closed when the first fetch arrives.
func heldFetches(t *testing.T) (addrs []string, fetching chan struct{}) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	t.Cleanup(func() {
		close(release)
		c.Close()
	})
	addrs = c.ListenAddrs()
	msgProduceNumbered(t, addrs, "orders", 10, 1)
	var held sync.Once
	fetching = make(chan struct{})
	c.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		held.Do(func() { close(fetching) })
		c.SleepControl(func() { <-release })
		return nil, nil, false
	})
	return addrs, fetching
}

// TestMessagesScanCancel: closing the scan's stream stops the scan on the
// server. The broker holds every fetch of the scan, so the scan can only
// end because its stream was closed.
func TestMessagesScanCancel(t *testing.T) {
	addrs, fetching := heldFetches(t)
	var logs syncBuffer
	_, u := startConsole(t, addrs, console.Config{RequestTimeout: time.Minute,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u+"/ui/topics/orders/messages/scan?key=k-3", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && sc.Text() != "event: progress" {
	}
	<-fetching // the scan is waiting for the broker
	cancel()
	resp.Body.Close()
	kafkatest.Eventually(t, 30*time.Second, "the scan to stop", func() bool {
		return strings.Contains(logs.String(), "console: scan cancelled")
	})
	if strings.Contains(logs.String(), "scan done") {
		t.Fatalf("the scan finished although every fetch was held:\n%s", logs.String())
	}
}

// TestMessagesTransactions: a committed transaction ends with a marker
// at the partition's last offset; the page reads to the end without
// waiting for a record that never comes, and shows no marker.
func TestMessagesTransactions(t *testing.T) {
	addrs := kafkatest.StartKfake(t)
	kafkatest.CreateTopic(t, addrs, "orders", 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.TransactionalID("console-test"), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 2 {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte{'t', byte('0' + i)}, Value: []byte("in a transaction")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	// Without the marker the read would wait RequestTimeout for the last
	// offset and call the partition incomplete.
	_, u := startConsole(t, addrs, console.Config{RequestTimeout: 5 * time.Second})
	status, body := get(t, u+"/ui/topics/orders/messages")
	if status != http.StatusOK || strings.Count(body, `class="msg-row"`) != 2 || strings.Contains(body, "msg-incomplete") {
		t.Fatalf("a topic ending in a transaction marker: %d, %d rows\n%s", status, strings.Count(body, `class="msg-row"`), body)
	}
	_, done := msgScan(t, u+"/ui/topics/orders/messages/scan?q=transaction")
	if strings.Count(done, `class="msg-row"`) != 2 {
		t.Fatalf("a scan of a topic ending in a transaction marker: %s", done)
	}
}

// TestBrowserMessagesCancel: the page's Cancel scan button closes the
// stream, the scan stops on the server, and the page says it was
// cancelled, keeping the progress it had.
func TestBrowserMessagesCancel(t *testing.T) {
	addrs, fetching := heldFetches(t)
	var logs syncBuffer
	_, u := startConsole(t, addrs, console.Config{RequestTimeout: time.Minute,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ctx := tab(t)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(u+"/ui/topics/orders/messages?key=k-3"),
		chromedp.WaitVisible(chromedp.ID("scan-cancel"))); err != nil {
		t.Fatal(err)
	}
	<-fetching
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("scan-cancel")), chromedp.WaitVisible(chromedp.ID("scan-cancelled"))); err != nil {
		t.Fatal(err)
	}
	kafkatest.Eventually(t, 30*time.Second, "the server to stop the scan", func() bool {
		return strings.Contains(logs.String(), "console: scan cancelled")
	})
	if got := text(t, ctx, "#scan-stopped"); !strings.Contains(got, "0 of 10 records read") || strings.Contains(got, "Cancel scan") {
		t.Fatalf("the page after Cancel: %q", got)
	}
}

// TestMessagesScanEndStreams: EndStreams (the HTTP server shutting down)
// ends a running scan's stream with a done event saying so.
func TestMessagesScanEndStreams(t *testing.T) {
	addrs, fetching := heldFetches(t)
	c, u := startConsole(t, addrs, console.Config{RequestTimeout: time.Minute})
	resp, err := http.Get(u + "/ui/topics/orders/messages/scan?key=k-3")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	<-fetching
	c.EndStreams()
	b, _ := io.ReadAll(resp.Body) // the stream ends
	if !strings.Contains(string(b), "event: done") || !strings.Contains(string(b), "shutting down") {
		t.Fatalf("the stream after EndStreams:\n%s", b)
	}
}
