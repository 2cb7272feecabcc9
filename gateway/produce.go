package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/spoolmq/spool/internal/httpapi"
	"github.com/spoolmq/spool/internal/msgtrace"
)

// route is one endpoint; routes() is the table the mux and the OpenAPI test
// are built from.
type route struct {
	method, pattern string
	handle          func(w http.ResponseWriter, r *http.Request) error
}

func routes(g *Gateway) []route {
	return []route{
		{"POST", "/api/topics/{topic}/records", g.produceRecords},
		{"POST", "/api/topics/{topic}/events", g.produceEvents},
		{"GET", "/api/topics/{topic}/events", g.streamTopic},
		{"POST", "/api/commands/{topic}", g.submitCommand},
		{"GET", "/api/requests", g.listRequests},
		{"GET", "/api/requests/{id}", g.getRequest},
		{"DELETE", "/api/requests/{id}", g.cancelRequest},
		{"GET", "/api/requests/{id}/result", g.getResult},
		{"GET", "/api/requests/{id}/events", g.requestEvents},
		{"GET", "/api/requests/{id}/ws", g.requestWebSocket},
		{"GET", "/api/openapi.json", g.openAPI},
	}
}

// wrap turns a handler's error into a problem+json answer.
func (g *Gateway) wrap(route string, h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		w := &statusWriter{ResponseWriter: rw}
		defer func() { g.cfg.Hooks.HTTPDone(route, w.status, time.Since(start)) }()
		err := h(w, r)
		if err == nil {
			return
		}
		var he *httpapi.Error
		if errors.As(err, &he) {
			if he.Status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="spool"`)
			}
		} else {
			g.log.Error("gateway: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		httpapi.WriteError(w, err)
	})
}

func (g *Gateway) notFound(w http.ResponseWriter, r *http.Request) {
	httpapi.WriteProblem(w, http.StatusNotFound, fmt.Sprintf("no gateway endpoint %s %s; see /api/openapi.json", r.Method, r.URL.Path))
}

// topicName is Kafka's legal topic name.
var topicName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

func pathTopic(r *http.Request) (string, error) {
	t := r.PathValue("topic")
	if !topicName.MatchString(t) || t == "." || t == ".." {
		return "", httpapi.Errorf(http.StatusBadRequest, "topic name %q is not a legal Kafka topic name (letters, digits, '.', '_', '-', at most 249)", t)
	}
	return t, nil
}

// recordIn is one record of a produce request.
type recordIn struct {
	Key         *string           `json:"key,omitempty"`
	KeyBase64   *string           `json:"key_base64,omitempty"`
	Value       json.RawMessage   `json:"value,omitempty"`
	ValueBase64 *string           `json:"value_base64,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Partition   *int32            `json:"partition,omitempty"`
}

type produceIn struct {
	Records []recordIn `json:"records"`
}

// offsetOut is one record's outcome, in request order.
type offsetOut struct {
	Partition *int32 `json:"partition,omitempty"`
	Offset    *int64 `json:"offset,omitempty"`
	Error     string `json:"error,omitempty"`
}

type produceOut struct {
	Offsets []offsetOut `json:"offsets"`
}

func (in recordIn) record(topic string, i int) (*kgo.Record, error) {
	r := &kgo.Record{Topic: topic}
	switch {
	case in.Key != nil && in.KeyBase64 != nil:
		return nil, httpapi.Errorf(http.StatusBadRequest, "records[%d]: give key or key_base64, not both", i)
	case in.Key != nil:
		r.Key = []byte(*in.Key)
	case in.KeyBase64 != nil:
		k, err := base64.StdEncoding.DecodeString(*in.KeyBase64)
		if err != nil {
			return nil, httpapi.Errorf(http.StatusBadRequest, "records[%d]: key_base64 is not standard base64: %v", i, err)
		}
		r.Key = k
	}
	switch {
	case in.Value != nil && in.ValueBase64 != nil:
		return nil, httpapi.Errorf(http.StatusBadRequest, "records[%d]: give value or value_base64, not both", i)
	case in.ValueBase64 != nil:
		v, err := base64.StdEncoding.DecodeString(*in.ValueBase64)
		if err != nil {
			return nil, httpapi.Errorf(http.StatusBadRequest, "records[%d]: value_base64 is not standard base64: %v", i, err)
		}
		r.Value = v
	case in.Value != nil && !bytes.Equal(in.Value, []byte("null")):
		var buf bytes.Buffer
		if err := json.Compact(&buf, in.Value); err != nil {
			return nil, httpapi.Errorf(http.StatusBadRequest, "records[%d]: value: %v", i, err)
		}
		r.Value = buf.Bytes()
	}
	for k, v := range in.Headers {
		if k == "" {
			return nil, httpapi.Errorf(http.StatusBadRequest, "records[%d]: empty header name", i)
		}
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	if in.Partition != nil {
		if *in.Partition < 0 {
			return nil, httpapi.Errorf(http.StatusBadRequest, "records[%d]: partition %d is negative", i, *in.Partition)
		}
		setPartition(r, *in.Partition)
	}
	return r, nil
}

// produceRecords serves POST /api/topics/{topic}/records.
func (g *Gateway) produceRecords(w http.ResponseWriter, r *http.Request) error {
	topic, err := pathTopic(r)
	if err != nil {
		return err
	}
	principal, err := g.authorize(r, OpProduce, topic)
	if err != nil {
		return err
	}
	var in produceIn
	if err := httpapi.DecodeJSON(w, r, g.cfg.MaxBodyBytes, &in); err != nil {
		return err
	}
	if len(in.Records) == 0 {
		return httpapi.Errorf(http.StatusBadRequest, `request body has no records; send {"records": [{"value": ...}]}`)
	}
	if len(in.Records) > g.cfg.MaxRecords {
		return httpapi.Errorf(http.StatusRequestEntityTooLarge, "%d records in one request; the limit is %d", len(in.Records), g.cfg.MaxRecords)
	}
	recs := make([]*kgo.Record, len(in.Records))
	for i, ri := range in.Records {
		if recs[i], err = ri.record(topic, i); err != nil {
			return err
		}
		propagate(r, recs[i])
	}
	if async(r) {
		if len(recs) != 1 {
			return httpapi.Errorf(http.StatusBadRequest, "Prefer: respond-async takes exactly one record (the command); got %d", len(recs))
		}
		return g.submit(w, r, principal, topic, recs[0], commandOptions(r))
	}
	return g.idempotent(w, r, principal, func(late func(int, any, error)) (int, any, error) { return g.produce("record", recs, late) })
}

// errUnacked: the broker has not answered within ProduceTimeout. The
// records may still be written: franz-go's idempotent producer does not
// give up on a batch it has sent until the broker answers, and it then
// writes it exactly once.
var errUnacked = errors.New("gateway: the broker has not acknowledged the write in time")

// produceWait produces recs and waits up to ProduceTimeout for every
// acknowledgement. The produce is never abandoned half-way (not by the
// client going away, not by the timeout): if the wait times out it returns
// errUnacked and, when the broker finally answers, late (if not nil) gets
// the results.
func (g *Gateway) produceWait(recs []*kgo.Record, late func(kgo.ProduceResults)) (kgo.ProduceResults, error) {
	w := &waiter{res: make(kgo.ProduceResults, 0, len(recs)), left: len(recs), done: make(chan struct{}), late: late}
	g.inflight.Add(1)
	for _, r := range recs {
		var span trace.Span
		if g.tracer != nil {
			span = msgtrace.StartRecordSend(g.tracer, r)
		}
		// Promises run on franz-go's promise goroutine and must not block:
		// the late handler (store writes) runs on a goroutine of its own.
		g.cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
			if span != nil {
				msgtrace.EndSend(span, r, err)
			}
			w.mu.Lock()
			w.res = append(w.res, kgo.ProduceResult{Record: r, Err: err})
			w.left--
			last, gaveUp := w.left == 0, w.gaveUp
			w.mu.Unlock()
			if !last {
				return
			}
			if !gaveUp {
				close(w.done)
				g.inflight.Done()
				return
			}
			go func() {
				defer g.inflight.Done()
				if w.late != nil {
					w.late(w.res)
				}
			}()
		})
	}
	t := time.NewTimer(g.cfg.ProduceTimeout)
	defer t.Stop()
	select {
	case <-w.done:
		return w.res, nil
	case <-t.C:
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.left == 0 {
		<-w.done
		return w.res, nil
	}
	w.gaveUp = true
	return nil, errUnacked
}

// waiter collects the results of one produceWait.
type waiter struct {
	mu     sync.Mutex
	res    kgo.ProduceResults
	left   int
	gaveUp bool
	done   chan struct{}
	late   func(kgo.ProduceResults)
}

// produce produces recs and answers with their offsets (or errors) in
// request order.
func (g *Gateway) produce(kind string, recs []*kgo.Record, late func(int, any, error)) (int, any, error) {
	var lateRes func(kgo.ProduceResults)
	if late != nil {
		lateRes = func(res kgo.ProduceResults) { late(g.produceAnswer(kind, recs, res)) }
	}
	res, err := g.produceWait(recs, lateRes)
	if err != nil {
		return 0, nil, produceError(err)
	}
	return g.produceAnswer(kind, recs, res)
}

func (g *Gateway) produceAnswer(kind string, recs []*kgo.Record, res kgo.ProduceResults) (int, any, error) {
	// Results come in completion order; answer in request order.
	index := make(map[*kgo.Record]int, len(recs))
	for i, r := range recs {
		index[r] = i
	}
	out := produceOut{Offsets: make([]offsetOut, len(recs))}
	var firstErr error
	allFailed := true
	for _, pr := range res {
		i := index[pr.Record]
		if pr.Err != nil {
			if e := outOfRange(pr.Record); e != nil {
				pr.Err = e
			}
			out.Offsets[i].Error = produceError(pr.Err).Detail
			if firstErr == nil {
				firstErr = pr.Err
			}
			continue
		}
		allFailed = false
		p, o := pr.Record.Partition, pr.Record.Offset
		out.Offsets[i].Partition, out.Offsets[i].Offset = &p, &o
	}
	if ok := len(recs) - countErrs(out); ok > 0 {
		g.cfg.Hooks.Produced(kind, ok)
	}
	if allFailed && firstErr != nil {
		return 0, nil, produceError(firstErr)
	}
	return http.StatusOK, out, nil
}

func countErrs(o produceOut) int {
	n := 0
	for _, x := range o.Offsets {
		if x.Error != "" {
			n++
		}
	}
	return n
}

// produceError maps a produce error to the HTTP answer: 404 for an unknown
// topic, 400 for a partition out of range, 413 for a record too large, 403
// for a broker authorization failure, 503 with Retry-After when the broker
// cannot be reached or did not answer in time (nothing is half-written: a
// record is either acknowledged or not in the log).
func produceError(err error) *httpapi.Error {
	var ke *kerr.Error
	switch {
	case errors.Is(err, errUnacked):
		return &httpapi.Error{Status: http.StatusServiceUnavailable, RetryAfter: time.Second, Err: err,
			Detail: "the broker has not acknowledged the write in time; it may still be written once the broker is back, so retry with the same Idempotency-Key (which never writes twice)"}
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		return &httpapi.Error{Status: http.StatusNotFound, Detail: "topic does not exist (create it first: spool topic create)", Err: err}
	case errors.Is(err, errPartitionRange):
		return &httpapi.Error{Status: http.StatusBadRequest, Detail: strings.TrimPrefix(err.Error(), "gateway: "), Err: err}
	case errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge):
		return &httpapi.Error{Status: http.StatusRequestEntityTooLarge, Detail: "record is larger than the broker accepts", Err: err}
	case errors.Is(err, kerr.TopicAuthorizationFailed) || errors.Is(err, kerr.ClusterAuthorizationFailed):
		return &httpapi.Error{Status: http.StatusForbidden, Detail: "the broker refused the gateway's write: " + err.Error(), Err: err}
	case errors.As(err, &ke) && !ke.Retriable:
		return &httpapi.Error{Status: http.StatusBadGateway, Detail: "the broker refused the record: " + err.Error(), Err: err}
	default:
		return &httpapi.Error{Status: http.StatusServiceUnavailable, RetryAfter: time.Second,
			Detail: "the broker did not acknowledge the write (" + err.Error() + "); retry later", Err: err}
	}
}

// idempotent runs do once per Idempotency-Key (scoped by principal and
// path): a repeat gets the stored answer with Idempotent-Replayed: true, a
// repeat while the first is in flight gets 409. Failures are not stored,
// so the client may retry them with the same key.
func (g *Gateway) idempotent(w http.ResponseWriter, r *http.Request, principal string, do func(late func(int, any, error)) (int, any, error)) error {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		status, v, err := do(nil)
		if err != nil {
			return err
		}
		httpapi.WriteJSON(w, status, v)
		return nil
	}
	if len(key) > 255 {
		return httpapi.Errorf(http.StatusBadRequest, "Idempotency-Key is longer than 255 characters")
	}
	skey := principal + "\x1f" + r.URL.Path + "\x1f" + key
	e, err := g.store.BeginIdem(r.Context(), skey, time.Now())
	if err != nil {
		return err
	}
	if e != nil {
		if !e.Done {
			return &httpapi.Error{Status: http.StatusConflict, RetryAfter: time.Second,
				Detail: "a request with this Idempotency-Key is still in progress; retry later"}
		}
		w.Header().Set("Idempotent-Replayed", "true")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(e.Status)
		_, _ = w.Write(e.Body)
		return nil
	}
	ctx := context.WithoutCancel(r.Context())
	// settle stores the answer (a success) or frees the key (a failure, so
	// the client may retry it).
	settle := func(status int, v any, err error) ([]byte, error) {
		if err != nil {
			if aerr := g.store.AbortIdem(ctx, skey); aerr != nil {
				g.log.Warn("gateway: release idempotency key", "err", aerr)
			}
			return nil, err
		}
		body, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		body = append(body, '\n')
		return body, g.store.FinishIdem(ctx, skey, status, body)
	}
	unacked := false
	status, v, err := do(func(status int, v any, err error) {
		// The broker answered after we gave up waiting: until now a
		// retry with this key got 409; from now on the real answer.
		if _, err := settle(status, v, err); err != nil {
			g.log.Warn("gateway: late produce answer", "err", err)
		}
	})
	if errors.Is(err, errUnacked) {
		unacked = true
	}
	if unacked {
		return err // the key stays in flight until the late answer settles it
	}
	body, err := settle(status, v, err)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return nil
}

// propagate copies the request's W3C trace context to a record that
// carries none, so the trace continues through the broker.
func propagate(r *http.Request, rec *kgo.Record) {
	tp := r.Header.Get("traceparent")
	if tp == "" {
		return
	}
	for _, h := range rec.Headers {
		if h.Key == "traceparent" {
			return
		}
	}
	rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: "traceparent", Value: []byte(tp)})
	if ts := r.Header.Get("tracestate"); ts != "" {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: "tracestate", Value: []byte(ts)})
	}
}

// async reports whether the request has Prefer: respond-async.
func async(r *http.Request) bool {
	for _, v := range r.Header.Values("Prefer") {
		for _, p := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), "respond-async") {
				return true
			}
		}
	}
	return false
}

// partitioner partitions records the way Kafka's default partitioner does
// (murmur2 of the key, sticky for records without one), except records
// with an explicit partition (setPartition), which go there.
type partitioner struct{}

type explicitPartition struct{}

// partitionChoice marks a record with an explicit partition; the
// partitioner notes there when it is out of range (kgo then fails the
// record), so the error maps to 400 without matching error text.
type partitionChoice struct{ outOfRange atomic.Int32 }

func setPartition(r *kgo.Record, p int32) {
	r.Partition = p
	// The record's context is only this marker: a produce is never
	// cancelled half-way (see produceWait).
	r.Context = context.WithValue(context.Background(), explicitPartition{}, &partitionChoice{})
}

// errPartitionRange is a produce error for a partition the topic lacks.
var errPartitionRange = errors.New("gateway: partition out of range")

// outOfRange returns errPartitionRange with the partition count if the
// partitioner found r's explicit partition out of range.
func outOfRange(r *kgo.Record) error {
	if r.Context == nil {
		return nil
	}
	pc, _ := r.Context.Value(explicitPartition{}).(*partitionChoice)
	if pc == nil {
		return nil
	}
	if n := pc.outOfRange.Load(); n > 0 {
		return fmt.Errorf("%w: partition %d, the topic has %d", errPartitionRange, r.Partition, n)
	}
	return nil
}

func (partitioner) ForTopic(t string) kgo.TopicPartitioner {
	return &topicPartitioner{inner: kgo.StickyKeyPartitioner(nil).ForTopic(t)}
}

type topicPartitioner struct{ inner kgo.TopicPartitioner }

func explicit(r *kgo.Record) bool {
	return r.Context != nil && r.Context.Value(explicitPartition{}) != nil
}

func (p *topicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	return explicit(r) || p.inner.RequiresConsistency(r)
}

func (p *topicPartitioner) Partition(r *kgo.Record, n int) int {
	if explicit(r) {
		if int(r.Partition) >= n {
			r.Context.Value(explicitPartition{}).(*partitionChoice).outOfRange.Store(int32(n))
		}
		return int(r.Partition)
	}
	return p.inner.Partition(r, n)
}

func (p *topicPartitioner) OnNewBatch() {
	if nb, ok := p.inner.(kgo.TopicPartitionerOnNewBatch); ok {
		nb.OnNewBatch()
	}
}
