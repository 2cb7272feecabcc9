package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/httpapi"
)

// cmdOptions are a submit's query parameters.
type cmdOptions struct {
	key      *string
	typ      string
	callback string
	timeout  time.Duration
	err      error
	event    *event.Event // the CloudEvent the command came as, if any
}

func commandOptions(r *http.Request) cmdOptions {
	q := r.URL.Query()
	o := cmdOptions{typ: q.Get("type"), callback: q.Get("callback")}
	if q.Has("key") {
		k := q.Get("key")
		o.key = &k
	}
	if t := q.Get("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 {
			o.err = httpapi.Errorf(http.StatusBadRequest, "timeout %q: want a positive duration such as 30s or 5m", t)
		}
		o.timeout = d
	}
	return o
}

// submitCommand serves POST /api/commands/{topic}: the body is the command
// (any content type; a CloudEvent in either mode keeps its attributes).
func (g *Gateway) submitCommand(w http.ResponseWriter, r *http.Request) error {
	topic, err := pathTopic(r)
	if err != nil {
		return err
	}
	principal, err := g.authorize(r, OpProduce, topic)
	if err != nil {
		return err
	}
	body, err := readBody(w, r, g.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	opts := commandOptions(r)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var ev *event.Event
	if mt == ctStructured || r.Header.Get("ce-type") != "" {
		evs, err := parseCloudEvents(r, body)
		if err != nil {
			return err
		}
		if len(evs) != 1 {
			return httpapi.Errorf(http.StatusBadRequest, "a command is one event, not a batch")
		}
		ev = evs[0]
		opts.event = ev
	} else {
		ev = &event.Event{Type: opts.typ, Source: "/spool/gateway", Time: time.Now().UTC(),
			ContentType: r.Header.Get("Content-Type"), Data: body}
		if ev.Type == "" {
			ev.Type = "command"
		}
		ev.TraceParent, ev.TraceState = r.Header.Get("traceparent"), r.Header.Get("tracestate")
		if len(body) == 0 {
			ev.Data = nil
		}
	}
	if opts.key != nil {
		ev.Key = []byte(*opts.key)
	}
	if ev.ID == "" {
		ev.ID = "pending" // replaced by the request id in submit
	}
	rec, err := ev.Record(topic)
	if err != nil {
		return httpapi.Errorf(http.StatusBadRequest, "command: %v", err)
	}
	return g.submit(w, r, principal, topic, rec, opts)
}

// submit stores a request for the command rec, produces it and answers 202.
// The request row (with its Idempotency-Key) is written before the command
// is produced, so a concurrent or later retry with the same key finds it
// and never produces a second command.
func (g *Gateway) submit(w http.ResponseWriter, r *http.Request, principal, topic string, rec *kgo.Record, o cmdOptions) error {
	if o.err != nil {
		return o.err
	}
	if o.callback != "" {
		if err := g.cfg.Callback.check(o.callback); err != nil {
			return err
		}
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > 255 {
		return httpapi.Errorf(http.StatusBadRequest, "Idempotency-Key is longer than 255 characters")
	}
	ttl := g.cfg.RequestTimeout
	if o.timeout > 0 && o.timeout < ttl {
		ttl = o.timeout
	}
	now := time.Now().UTC()
	req := &Request{
		ID: uuid.NewString(), Topic: topic, Principal: principal, State: Accepted,
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(ttl), Partition: -1, Offset: -1,
		CallbackURL: o.callback,
	}
	if key != "" {
		req.IdempotencyKey = principal + "\x1f" + topic + "\x1f" + key
	}
	stored, created, err := g.store.Create(r.Context(), req)
	if err != nil {
		return err
	}
	if !created {
		w.Header().Set("Idempotent-Replayed", "true")
		w.Header().Set("Location", "/api/requests/"+stored.ID)
		g.writeStatus(w, stored, http.StatusAccepted)
		return nil
	}
	setHeader(rec, event.HeaderCorrelationID, req.ID)
	setHeader(rec, HeaderReplyTo, g.cfg.ReplyTopic)
	setHeader(rec, HeaderExpiresAt, req.ExpiresAt.Format(time.RFC3339Nano))
	if o.event == nil {
		setHeader(rec, event.HeaderID, req.ID)
	}
	res, err := g.produceWait([]*kgo.Record{rec}, func(res kgo.ProduceResults) { g.settleCommand(req.ID, rec, res.FirstErr()) })
	if err != nil {
		// Not acknowledged in time: the command may still be written. The
		// request stays accepted; a retry with the same key returns it, and
		// the broker's answer settles it (pending or failed).
		g.log.Warn("gateway: command not acknowledged in time", "id", req.ID)
		return produceError(err)
	}
	if err := res.FirstErr(); err != nil {
		ctx := context.WithoutCancel(r.Context())
		if e := outOfRange(rec); e != nil {
			err = e
		}
		// franz-go fails a record only when it is safe to: it was not
		// written. No command exists, so the key is free for a retry.
		if derr := g.store.Delete(ctx, req.ID); derr != nil {
			g.log.Warn("gateway: forget refused request", "id", req.ID, "err", derr)
		}
		return produceError(err)
	}
	g.cfg.Hooks.Produced("command", 1)
	ctx := context.WithoutCancel(r.Context())
	// Relaxed: the request row is already durable, so a retry finds it;
	// should a power loss lose this, the request stays accepted and still
	// takes its reply.
	done, _, err := g.store.Transition(ctx, req.ID, Transition{From: []State{Accepted}, To: Pending,
		Partition: rec.Partition, Offset: rec.Offset, At: time.Now(), Relaxed: true})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/requests/"+req.ID)
	g.writeStatus(w, done, http.StatusAccepted)
	return nil
}

// settleCommand records the broker's late answer to a command whose
// submit stopped waiting for it.
func (g *Gateway) settleCommand(id string, rec *kgo.Record, err error) {
	t := Transition{From: []State{Accepted}, To: Pending, Partition: rec.Partition, Offset: rec.Offset, At: time.Now(), Relaxed: true}
	if err != nil {
		t = Transition{From: []State{Accepted}, To: Failed, Error: "the command could not be produced: " + err.Error(),
			Partition: -1, Offset: -1, At: time.Now()}
	}
	r, applied, serr := g.store.Transition(context.Background(), id, t)
	if serr != nil {
		g.log.Error("gateway: settle command", "id", id, "err", serr)
		return
	}
	if applied && r.State.Final() {
		g.finished(r)
	}
}

func setHeader(r *kgo.Record, k, v string) {
	for i, h := range r.Headers {
		if h.Key == k {
			r.Headers[i].Value = []byte(v)
			return
		}
	}
	r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
}

// statusOut is the status document of a request (GET, callbacks, push).
type statusOut struct {
	ID           string            `json:"id"`
	Topic        string            `json:"topic"`
	State        State             `json:"state"`
	CreatedAt    time.Time         `json:"created_at"`
	UpdatedAt    time.Time         `json:"updated_at"`
	ExpiresAt    time.Time         `json:"expires_at"`
	Partition    *int32            `json:"partition,omitempty"`
	Offset       *int64            `json:"offset,omitempty"`
	ContentType  string            `json:"content_type,omitempty"`
	Result       json.RawMessage   `json:"result,omitempty"`
	ResultBase64 []byte            `json:"result_base64,omitempty"`
	Error        string            `json:"error,omitempty"`
	Callback     *callbackOut      `json:"callback,omitempty"`
	Links        map[string]string `json:"links"`
}

type callbackOut struct {
	URL           string     `json:"url"`
	State         string     `json:"state,omitempty"`
	Attempts      []Attempt  `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
}

func statusDoc(r *Request) statusOut {
	self := "/api/requests/" + r.ID
	out := statusOut{ID: r.ID, Topic: r.Topic, State: r.State, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		ExpiresAt: r.ExpiresAt, Error: r.Error,
		Links: map[string]string{"self": self, "events": self + "/events", "ws": self + "/ws", "result": self + "/result"}}
	if r.Partition >= 0 {
		p, o := r.Partition, r.Offset
		out.Partition, out.Offset = &p, &o
	}
	if r.State == Succeeded && len(r.Result) > 0 {
		out.ContentType = r.ContentType
		if (r.ContentType == "" || isJSON(r.ContentType)) && json.Valid(r.Result) {
			out.Result = r.Result
		} else {
			out.ResultBase64 = r.Result
		}
	}
	if r.CallbackURL != "" {
		cb := &callbackOut{URL: r.CallbackURL, State: r.CallbackState, Attempts: r.CallbackAttempts}
		if cb.Attempts == nil {
			cb.Attempts = []Attempt{}
		}
		if r.CallbackState == CallbackPending && !r.CallbackNextAt.IsZero() {
			t := r.CallbackNextAt
			cb.NextAttemptAt = &t
		}
		out.Callback = cb
	}
	return out
}

func (g *Gateway) writeStatus(w http.ResponseWriter, r *Request, code int) {
	if !r.State.Final() {
		w.Header().Set("Retry-After", strconv.Itoa(int((g.cfg.PollInterval+time.Second-1)/time.Second)))
	}
	w.Header().Set("Content-Location", "/api/requests/"+r.ID)
	httpapi.WriteJSON(w, code, statusDoc(r))
}

// loadRequest reads the request of the path and authorizes op on it: the
// principal that submitted it may always read it.
func (g *Gateway) loadRequest(r *http.Request, op Operation) (*Request, error) {
	id := r.PathValue("id")
	req, err := g.store.Get(r.Context(), id)
	if errors.Is(err, ErrNotFound) {
		return nil, httpapi.Errorf(http.StatusNotFound, "no request %q (unknown, or finished longer ago than the retention)", id)
	}
	if err != nil {
		return nil, err
	}
	p, err := g.authorize(r, op, req.Topic)
	var he *httpapi.Error
	if err != nil && errors.As(err, &he) && he.Status == http.StatusForbidden && p != "" && p == req.Principal {
		err = nil
	}
	return req, err
}

// preferWait returns the wait=N of a Prefer header, capped at max.
func preferWait(r *http.Request, max time.Duration) time.Duration {
	for _, v := range r.Header.Values("Prefer") {
		for _, p := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(k), "wait") {
				continue
			}
			n, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
			if err != nil || n <= 0 {
				continue
			}
			return min(time.Duration(n*float64(time.Second)), max)
		}
	}
	return 0
}

// storePoll is how often a waiter re-reads the store, for changes made by
// another instance that this one does not see (a cancel, an expiry).
const storePoll = time.Second

// loadAndWait reads the request of the path (authorizing a read) and, with
// Prefer: wait=N, waits up to N seconds until it is final. The watch starts
// before the read, so a change right after the read is not missed and the
// read need not be repeated.
func (g *Gateway) loadAndWait(r *http.Request) (*Request, error) {
	d := preferWait(r, g.cfg.MaxWait)
	if d <= 0 {
		return g.loadRequest(r, OpRead)
	}
	ch, stop := g.hub.watch(r.PathValue("id"))
	defer stop()
	req, err := g.loadRequest(r, OpRead)
	if err != nil {
		return nil, err
	}
	return g.waitFinal(r.Context(), req, d, ch)
}

// waitFinal waits until req is final, d passes or ctx ends, and returns
// its latest state. ch is req's watch, started before req was read.
func (g *Gateway) waitFinal(ctx context.Context, req *Request, d time.Duration, ch <-chan *Request) (*Request, error) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	poll := time.NewTicker(storePoll)
	defer poll.Stop()
	cur := req
	for !cur.State.Final() {
		select {
		case r := <-ch:
			if r != nil && r.State.Final() {
				return r, nil // final states do not change: no need to read it back
			}
		case <-poll.C:
		case <-deadline.C:
			return cur, nil
		case <-ctx.Done():
			return cur, nil
		case <-g.streams.Done():
			return cur, nil
		}
		var err error
		if cur, err = g.store.Get(ctx, req.ID); err != nil {
			return nil, err
		}
	}
	return cur, nil
}

// getRequest serves GET /api/requests/{id}: 202 while open (the negative
// acknowledgement), 200 once final; Prefer: wait=N holds it up to N seconds.
func (g *Gateway) getRequest(w http.ResponseWriter, r *http.Request) error {
	req, err := g.loadAndWait(r)
	if err != nil {
		return err
	}
	code := http.StatusAccepted
	if req.State.Final() {
		code = http.StatusOK
	}
	g.writeStatus(w, req, code)
	return nil
}

// getResult serves GET /api/requests/{id}/result: the reply's value with its
// content type once succeeded.
func (g *Gateway) getResult(w http.ResponseWriter, r *http.Request) error {
	req, err := g.loadAndWait(r)
	if err != nil {
		return err
	}
	switch req.State {
	case Succeeded:
		ct := req.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(req.Result)
		return nil
	case Accepted, Pending:
		w.Header().Set("Location", "/api/requests/"+req.ID)
		g.writeStatus(w, req, http.StatusAccepted)
		return nil
	default:
		return httpapi.Errorf(http.StatusConflict, "request %s has no result: it %s (%s)", req.ID, req.State, req.Error)
	}
}

// cancelRequest serves DELETE /api/requests/{id}: the service is told
// through a cancellation event on the command's topic (and partition, so
// it follows the command), then the request is marked cancelled.
func (g *Gateway) cancelRequest(w http.ResponseWriter, r *http.Request) error {
	req, err := g.loadRequest(r, OpProduce)
	if err != nil {
		return err
	}
	if req.State.Final() {
		return httpapi.Errorf(http.StatusConflict, "request %s is already %s; only an open request can be cancelled", req.ID, req.State)
	}
	ev := &event.Event{ID: uuid.NewString(), Type: CancelType, Source: "/spool/gateway", Time: time.Now().UTC(),
		CorrelationID: req.ID}
	ev.SetHeader(HeaderCancel, []byte("true"))
	rec, err := ev.Record(req.Topic)
	if err != nil {
		return err
	}
	if req.Partition >= 0 {
		setPartition(rec, req.Partition)
	}
	ctx := context.WithoutCancel(r.Context())
	cancelled := func() (*Request, bool, error) {
		return g.store.Transition(ctx, req.ID, Transition{From: []State{Accepted, Pending}, To: Cancelled,
			Error: "cancelled by the client", Partition: -1, Offset: -1, At: time.Now()})
	}
	res, err := g.produceWait([]*kgo.Record{rec}, func(res kgo.ProduceResults) {
		// Told the service after all: the request is cancelled now.
		if res.FirstErr() == nil {
			if cur, applied, err := cancelled(); err == nil && applied {
				g.finished(cur)
			}
		}
	})
	if err == nil {
		err = res.FirstErr()
	}
	if err != nil {
		return produceError(err)
	}
	cur, applied, err := cancelled()
	if err != nil {
		return err
	}
	if !applied {
		return httpapi.Errorf(http.StatusConflict, "request %s finished (%s) before the cancel", req.ID, cur.State)
	}
	g.finished(cur)
	g.writeStatus(w, cur, http.StatusOK)
	return nil
}

var _ = fmt.Sprint
