package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/httpapi"
)

// keepAlive is how often an idle SSE stream gets a comment line, so proxies
// do not close it.
const keepAlive = 15 * time.Second

// sse starts an event stream response.
func sse(w http.ResponseWriter) (http.Flusher, error) {
	fl, ok := w.(http.Flusher)
	if !ok {
		return nil, httpapi.Errorf(http.StatusInternalServerError, "streaming is not supported by this server")
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	return fl, nil
}

func writeEvent(w http.ResponseWriter, id, typ string, data []byte) error {
	var b strings.Builder
	if id != "" {
		b.WriteString("id: " + id + "\n")
	}
	b.WriteString("event: " + typ + "\n")
	b.WriteString("data: ")
	b.Write(data)
	b.WriteString("\n\n")
	_, err := w.Write([]byte(b.String()))
	return err
}

// watchRequest calls send with the request's status now and after every
// change, until it is final (and its callback, if any, settled), ctx ends
// or the gateway closes.
func (g *Gateway) watchRequest(ctx context.Context, req *Request, send func(statusOut) error, idle func() error) error {
	ch, stop := g.hub.watch(req.ID)
	defer stop()
	poll := time.NewTicker(storePoll)
	defer poll.Stop()
	ka := time.NewTicker(keepAlive)
	defer ka.Stop()
	var last []byte
	for {
		cur, err := g.store.Get(ctx, req.ID)
		if err != nil {
			return err
		}
		doc := statusDoc(cur)
		b, _ := json.Marshal(doc)
		if string(b) != string(last) {
			if err := send(doc); err != nil {
				return err
			}
			last = b
		}
		if cur.State.Final() && cur.CallbackState != CallbackPending {
			return nil
		}
		select {
		case <-ch:
		case <-poll.C:
		case <-ka.C:
			if idle != nil {
				if err := idle(); err != nil {
					return err
				}
			}
		case <-ctx.Done():
			return nil
		case <-g.streams.Done():
			return nil
		}
	}
}

// requestEvents serves GET /api/requests/{id}/events: a "status" event with
// the status document now and at every change; the stream ends after the
// final one.
func (g *Gateway) requestEvents(w http.ResponseWriter, r *http.Request) error {
	req, err := g.loadRequest(r, OpRead)
	if err != nil {
		return err
	}
	fl, err := sse(w)
	if err != nil {
		return err
	}
	_ = g.watchRequest(r.Context(), req, func(doc statusOut) error {
		b, _ := json.Marshal(doc)
		if err := writeEvent(w, string(doc.State), "status", b); err != nil {
			return err
		}
		fl.Flush()
		return nil
	}, func() error {
		if _, err := w.Write([]byte(": keep-alive\n\n")); err != nil {
			return err
		}
		fl.Flush()
		return nil
	})
	return nil
}

// requestWebSocket serves GET /api/requests/{id}/ws: a WebSocket that
// receives the status document (a JSON text message) now and at every
// change, closed normally after the final one.
func (g *Gateway) requestWebSocket(w http.ResponseWriter, r *http.Request) error {
	req, err := g.loadRequest(r, OpRead)
	if err != nil {
		return err
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: g.cfg.WebSocketOrigins})
	if err != nil {
		return nil // Accept has answered
	}
	defer c.CloseNow()
	ctx := c.CloseRead(r.Context()) // we only send; this answers pings and notices the close
	err = g.watchRequest(ctx, req, func(doc statusOut) error {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return wsjson.Write(wctx, c, doc)
	}, func() error {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return c.Ping(pctx)
	})
	if err != nil {
		c.Close(websocket.StatusInternalError, "status unavailable")
		return nil
	}
	c.Close(websocket.StatusNormalClosure, "final")
	return nil
}

// recordOut is a record as the topic stream sends it.
type recordOut struct {
	Topic       string            `json:"topic"`
	Partition   int32             `json:"partition"`
	Offset      int64             `json:"offset"`
	Timestamp   time.Time         `json:"timestamp"`
	Key         *string           `json:"key,omitempty"`
	KeyBase64   []byte            `json:"key_base64,omitempty"`
	Value       json.RawMessage   `json:"value,omitempty"`
	ValueBase64 []byte            `json:"value_base64,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
}

func toOut(r *kgo.Record) recordOut {
	o := recordOut{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UTC()}
	if r.Key != nil {
		if utf8.Valid(r.Key) {
			k := string(r.Key)
			o.Key = &k
		} else {
			o.KeyBase64 = r.Key
		}
	}
	if r.Value != nil {
		if json.Valid(r.Value) {
			o.Value = r.Value
		} else {
			o.ValueBase64 = r.Value
		}
	}
	if len(r.Headers) > 0 {
		o.Headers = map[string]string{}
		for _, h := range r.Headers {
			if utf8.Valid(h.Value) {
				o.Headers[h.Key] = string(h.Value)
			} else {
				o.Headers[h.Key] = "base64:" + base64.StdEncoding.EncodeToString(h.Value)
			}
		}
	}
	return o
}

// parseCursor reads a Last-Event-ID: "p:o,p:o,..." (the next offset to
// send from each partition seen so far).
func parseCursor(s string) (map[int32]int64, error) {
	out := map[int32]int64{}
	if s == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		ps, os, ok := strings.Cut(part, ":")
		p, err1 := strconv.ParseInt(ps, 10, 32)
		o, err2 := strconv.ParseInt(os, 10, 64)
		if !ok || err1 != nil || err2 != nil || p < 0 || o < 0 {
			return nil, httpapi.Errorf(http.StatusBadRequest, "Last-Event-ID %q: want partition:offset pairs separated by commas", s)
		}
		out[int32(p)] = o
	}
	return out, nil
}

func formatCursor(next map[int32]int64) string {
	ps := make([]int32, 0, len(next))
	for p := range next {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d:%d", p, next[p])
	}
	return b.String()
}

// parseFrom reads ?from=: earliest, latest (the default), an RFC 3339 time
// or Unix milliseconds.
func parseFrom(s string) (kgo.Offset, error) {
	switch s {
	case "", "latest", "end":
		return kgo.NewOffset().AtEnd(), nil
	case "earliest", "beginning", "start":
		return kgo.NewOffset().AtStart(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return kgo.NewOffset().AfterMilli(t.UnixMilli()), nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil && ms >= 0 {
		return kgo.NewOffset().AfterMilli(ms), nil
	}
	return kgo.Offset{}, httpapi.Errorf(http.StatusBadRequest, "from %q: want earliest, latest, an RFC 3339 time or Unix milliseconds", s)
}

// streamTopic serves GET /api/topics/{topic}/events: the topic's records as
// "record" events, filtered by ?key= and ?type= (ce_type). Each event's id
// is the cursor after it; a reconnect with Last-Event-ID (EventSource sends
// it) resumes exactly after the last event received, and the partitions
// the cursor does not name start from ?from= again.
func (g *Gateway) streamTopic(w http.ResponseWriter, r *http.Request) error {
	topic, err := pathTopic(r)
	if err != nil {
		return err
	}
	if _, err := g.authorize(r, OpRead, topic); err != nil {
		return err
	}
	q := r.URL.Query()
	from, err := parseFrom(q.Get("from"))
	if err != nil {
		return err
	}
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = q.Get("last_event_id")
	}
	next, err := parseCursor(last)
	if err != nil {
		return err
	}
	keyFilter, hasKey := q.Get("key"), q.Has("key")
	typeFilter := q.Get("type")

	parts, err := g.partitions(r.Context(), topic)
	if err != nil {
		return err
	}
	// "latest" is the end now, when the stream is answered, not when the
	// client gets round to fetching: a record produced after the response
	// started is always sent.
	ends := map[int32]int64{}
	if q.Get("from") == "" || q.Get("from") == "latest" || q.Get("from") == "end" {
		lo, err := g.adm.ListEndOffsets(r.Context(), topic)
		if err == nil {
			err = lo.Error()
		}
		if err != nil {
			return &httpapi.Error{Status: http.StatusServiceUnavailable, RetryAfter: time.Second,
				Detail: "the broker did not answer the end offsets request: " + err.Error(), Err: err}
		}
		lo.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
	}
	offsets := map[int32]kgo.Offset{}
	for _, p := range parts {
		if o, ok := next[p]; ok {
			offsets[p] = kgo.NewOffset().At(o)
		} else if e, ok := ends[p]; ok {
			offsets[p] = kgo.NewOffset().At(e)
		} else {
			offsets[p] = from
		}
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(g.cfg.Brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchMaxWait(time.Second),
	}, g.cfg.ClientOptions...)...)
	if err != nil {
		return fmt.Errorf("gateway: stream client: %w", err)
	}
	defer cl.Close()
	fl, err := sse(w)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-g.streams.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	lastWrite := time.Now()
	for {
		pctx, pcancel := context.WithTimeout(ctx, keepAlive)
		fs := cl.PollFetches(pctx)
		pcancel()
		if ctx.Err() != nil {
			return nil
		}
		var werr error
		wrote := false
		fs.EachRecord(func(rec *kgo.Record) {
			if werr != nil {
				return
			}
			next[rec.Partition] = rec.Offset + 1
			if hasKey && string(rec.Key) != keyFilter {
				return
			}
			if typeFilter != "" && event.TypeOf(rec) != typeFilter {
				return
			}
			b, _ := json.Marshal(toOut(rec))
			werr = writeEvent(w, formatCursor(next), "record", b)
			wrote = true
		})
		if werr != nil {
			return nil
		}
		if !wrote && time.Since(lastWrite) >= keepAlive {
			if _, err := w.Write([]byte(": keep-alive\n\n")); err != nil {
				return nil
			}
			wrote = true
		}
		if wrote {
			fl.Flush()
			lastWrite = time.Now()
		}
	}
}

// partitions returns the topic's partitions, 404 if it does not exist.
func (g *Gateway) partitions(ctx context.Context, topic string) ([]int32, error) {
	md, err := g.adm.Metadata(ctx, topic)
	if err != nil {
		return nil, &httpapi.Error{Status: http.StatusServiceUnavailable, RetryAfter: time.Second,
			Detail: "the broker did not answer the metadata request: " + err.Error(), Err: err}
	}
	td, ok := md.Topics[topic]
	if !ok || td.Err != nil || len(td.Partitions) == 0 {
		return nil, httpapi.Errorf(http.StatusNotFound, "topic %q does not exist", topic)
	}
	return td.Partitions.Numbers(), nil
}
