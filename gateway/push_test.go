package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/spoolmq/spool/internal/kafkatest"
)

type sseEvent struct{ id, typ, data string }

// sseStream opens an event stream and returns its events as they come.
func sseStream(t testing.TB, url string, hdr ...string) (<-chan sseEvent, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("stream %s: %d %q %s", url, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	ch := make(chan sseEvent, 64)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.typ != "" || ev.data != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.typ = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	return ch, cancel
}

func next(t testing.TB, ch <-chan sseEvent) (sseEvent, bool) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		return ev, ok
	case <-time.After(15 * time.Second):
		t.Fatal("no event within 15s")
		return sseEvent{}, false
	}
}

// TestRequestEventsSSE: the request's stream sends the pending status, then
// the result, then ends.
func TestRequestEventsSSE(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "push", 1)
		g := startGateway(t, addrs)
		st := submit(t, g, "push", "", `{}`)
		ch, stop := sseStream(t, g.URL+"/api/requests/"+st.ID+"/events")
		defer stop()
		ev, _ := next(t, ch)
		if ev.typ != "status" || decode[status](t, []byte(ev.data)).State != "pending" {
			t.Fatalf("first event %+v", ev)
		}
		rawReply(t, addrs, "spool.gateway.replies", st.ID, "", []byte(`{"v":1}`))
		ev, _ = next(t, ch)
		s := decode[status](t, []byte(ev.data))
		if s.State != "succeeded" || compact(string(s.Result)) != `{"v":1}` || ev.id != "succeeded" {
			t.Fatalf("second event %+v", ev)
		}
		if _, ok := next(t, ch); ok {
			t.Fatal("the stream did not end after the final status")
		}
	})
}

// TestRequestWebSocket: the WebSocket gets the status messages and a normal
// close after the final one.
func TestRequestWebSocket(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "wsp", 1)
		g := startGateway(t, addrs)
		st := submit(t, g, "wsp", "", `{}`)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(g.URL, "http")+"/api/requests/"+st.ID+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		var s status
		if err := wsjson.Read(ctx, c, &s); err != nil || s.State != "pending" {
			t.Fatalf("first message %+v %v", s, err)
		}
		rawReply(t, addrs, "spool.gateway.replies", st.ID, "error", []byte("no stock"))
		if err := wsjson.Read(ctx, c, &s); err != nil || s.State != "failed" || s.Error != "no stock" {
			t.Fatalf("second message %+v %v", s, err)
		}
		_, _, err = c.Read(ctx)
		if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
			t.Fatalf("after the final status: %v, want a normal close", err)
		}
	})
}

// TestTopicStreamResume: the topic stream sends records from the start,
// filtered by key and type, and a reconnect with Last-Event-ID continues
// exactly after the last event received, across partitions.
func TestTopicStreamResume(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "feed", 3)
		g := startGateway(t, addrs)
		var recs []string
		for i := range 9 {
			key := []string{"a", "b", "c"}[i%3]
			recs = append(recs, `{"key":"`+key+`","value":`+itoa(i)+`}`)
		}
		resp, b := call(t, "POST", g.URL+"/api/topics/feed/records", `{"records":[`+strings.Join(recs, ",")+`]}`)
		if resp.StatusCode != 200 {
			t.Fatalf("produce: %d %s", resp.StatusCode, b)
		}
		type rec struct {
			Partition int32           `json:"partition"`
			Offset    int64           `json:"offset"`
			Key       string          `json:"key"`
			Value     json.RawMessage `json:"value"`
		}
		ch, stop := sseStream(t, g.URL+"/api/topics/feed/events?from=earliest")
		got := map[string]bool{}
		var lastID string
		for range 4 {
			ev, _ := next(t, ch)
			r := decode[rec](t, []byte(ev.data))
			got[string(r.Value)] = true
			lastID = ev.id
		}
		stop()
		// Resume: the 5 not yet seen, none of the 4 again.
		ch, stop = sseStream(t, g.URL+"/api/topics/feed/events?from=earliest", "Last-Event-ID", lastID)
		for range 5 {
			ev, _ := next(t, ch)
			r := decode[rec](t, []byte(ev.data))
			if got[string(r.Value)] {
				t.Fatalf("value %s sent again after resume from %q", r.Value, lastID)
			}
			got[string(r.Value)] = true
		}
		stop()
		if len(got) != 9 {
			t.Fatalf("saw %d distinct records, want 9", len(got))
		}
		// Filters: key b only; from latest sees only new records.
		ch, stop = sseStream(t, g.URL+"/api/topics/feed/events?from=earliest&key=b")
		for range 3 {
			ev, _ := next(t, ch)
			if r := decode[rec](t, []byte(ev.data)); r.Key != "b" {
				t.Fatalf("key filter let through %+v", r)
			}
		}
		stop()
		ch, stop = sseStream(t, g.URL+"/api/topics/feed/events?type=order.paid")
		defer stop()
		call(t, "POST", g.URL+"/api/topics/feed/events", `{"specversion":"1.0","id":"1","type":"order.created","source":"/t"}`,
			"Content-Type", "application/cloudevents+json")
		call(t, "POST", g.URL+"/api/topics/feed/events", `{"specversion":"1.0","id":"2","type":"order.paid","source":"/t","data":7}`,
			"Content-Type", "application/cloudevents+json")
		ev, _ := next(t, ch)
		if r := decode[rec](t, []byte(ev.data)); string(r.Value) != "7" {
			t.Fatalf("type filter / from latest: got %+v", r)
		}
		// Bad input.
		resp, b = call(t, "GET", g.URL+"/api/topics/feed/events?from=yesterday", "")
		wantProblem(t, resp, b, 400, "from")
		resp, b = call(t, "GET", g.URL+"/api/topics/feed/events", "", "Last-Event-ID", "x")
		wantProblem(t, resp, b, 400, "Last-Event-ID")
		resp, b = call(t, "GET", g.URL+"/api/topics/nothing-here/events", "")
		wantProblem(t, resp, b, 404, "does not exist")
	})
}
