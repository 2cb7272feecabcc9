package main

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/producer"
)

// otlpReceiver is an OTLP/HTTP trace receiver (POST /v1/traces, protobuf),
// as a collector serves it, that keeps every span with its service name.
type otlpReceiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []receivedSpan
}

type receivedSpan struct {
	service  string
	resource map[string]string
	span     *tracepb.Span
}

func startOTLPReceiver(t *testing.T) *otlpReceiver {
	rc := &otlpReceiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want POST /v1/traces application/x-protobuf", http.StatusBadRequest)
			return
		}
		body, err := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &req)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		for _, rs := range req.ResourceSpans {
			res := map[string]string{}
			for _, kv := range rs.GetResource().GetAttributes() {
				res[kv.Key] = kv.GetValue().GetStringValue()
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					rc.got = append(rc.got, receivedSpan{service: res["service.name"], resource: res, span: s})
				}
			}
		}
		rc.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// find returns the spans named name, waiting up to wait for at least one.
func (rc *otlpReceiver) find(t *testing.T, name string, wait time.Duration) []receivedSpan {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		rc.mu.Lock()
		var out []receivedSpan
		for _, s := range rc.got {
			if s.span.Name == name {
				out = append(out, s)
			}
		}
		rc.mu.Unlock()
		if len(out) > 0 || time.Now().After(deadline) {
			return out
		}
		time.Sleep(20 * time.Millisecond) // polling the receiver, not synchronising on time
	}
}

func spanAttrs(s *tracepb.Span) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes {
		v := kv.GetValue()
		switch {
		case v.GetStringValue() != "":
			m[kv.Key] = v.GetStringValue()
		default:
			m[kv.Key] = strconv.FormatInt(v.GetIntValue(), 10)
		}
	}
	return m
}

// TestServeExportsSpans: `spool serve` with OTEL_EXPORTER_OTLP_ENDPOINT
// exports its spans over OTLP/HTTP to a real receiver, with the resource
// from OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES. A producer publishes
// an event (its send span exported by its own OTLP exporter), the broker's
// receive span continues the record's traceparent, an agent handles it:
// the receiver holds one trace send -> receive, send -> process with the
// messaging attributes, and the broker's span arrives by the flush at
// shutdown.
func TestServeExportsSpans(t *testing.T) {
	rc := startOTLPReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rc.srv.URL)
	t.Setenv("OTEL_SERVICE_NAME", "spool-under-test")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test")
	t.Setenv("OTEL_TRACES_SAMPLER", "always_on")
	addr, serve := runServeCmd(t, t.TempDir(), "--gateway=false", "--lookback=false", "--console=false", "--group-initial-rebalance-delay", "0")
	stopped := false
	defer func() {
		if !stopped {
			serve.stop()
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The services' own exporter, to the same receiver, as a service
	// configured by the same OTEL_* variables would have.
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(rc.srv.URL+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("billing"))))
	defer tp.Shutdown(context.Background())

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	p, err := producer.New(producer.WithBrokers(addr), producer.WithSource("/checkout"), producer.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ev, _ := event.New("order.placed", event.Raw, "o-1")
	ev.Key, ev.CorrelationID = []byte("customer-1"), "flow-1"
	if _, err := p.Publish(ctx, "orders", ev); err != nil {
		t.Fatal(err)
	}

	handled := make(chan struct{})
	var once sync.Once
	a, err := agent.New("billing", []string{"orders"}, agent.WithBrokers(addr), agent.WithTracerProvider(tp),
		agent.WithClientOptions(kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())),
		agent.WithHandler("order.placed", func(context.Context, *agent.Message) error {
			once.Do(func() { close(handled) })
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	actx, stopAgent := context.WithCancel(ctx)
	agentDone := make(chan error, 1)
	go func() { agentDone <- a.Run(actx) }()
	select {
	case <-handled:
	case <-ctx.Done():
		t.Fatal("the agent did not handle the event")
	}
	stopAgent()
	<-agentDone
	// Stopping serve flushes the broker's spans.
	stopped = true
	if err := serve.stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}

	// No waiting for the broker's span: serve returned only after its
	// exporter flushed (the batch processor would send it 5s later).
	recvs := rc.find(t, "receive orders", 0)
	sends, procs := rc.find(t, "send orders", 20*time.Second), rc.find(t, "process orders", 20*time.Second)
	if len(sends) != 1 || len(recvs) != 1 || len(procs) != 1 {
		t.Fatalf("spans: %d send, %d receive, %d process, want one each", len(sends), len(recvs), len(procs))
	}
	send, recv, proc := sends[0], recvs[0], procs[0]
	if recv.service != "spool-under-test" || recv.resource["deployment.environment.name"] != "test" {
		t.Errorf("broker span resource %v, want OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES", recv.resource)
	}
	if recv.resource["telemetry.sdk.language"] != "go" || recv.resource["service.version"] == "" {
		t.Errorf("broker span resource %v, want the SDK and the version", recv.resource)
	}
	traceID := hex.EncodeToString(send.span.TraceId)
	for _, s := range []receivedSpan{recv, proc} {
		if got := hex.EncodeToString(s.span.TraceId); got != traceID {
			t.Errorf("%s in trace %s, want the producer's %s", s.span.Name, got, traceID)
		}
		if hex.EncodeToString(s.span.ParentSpanId) != hex.EncodeToString(send.span.SpanId) {
			t.Errorf("%s: parent %x, want the send span %x", s.span.Name, s.span.ParentSpanId, send.span.SpanId)
		}
	}
	if recv.span.Kind != tracepb.Span_SPAN_KIND_SERVER || proc.span.Kind != tracepb.Span_SPAN_KIND_CONSUMER {
		t.Errorf("kinds: receive %v, process %v", recv.span.Kind, proc.span.Kind)
	}
	for s, want := range map[*receivedSpan]map[string]string{
		&recv: {"messaging.system": "kafka", "messaging.operation.type": "receive", "messaging.destination.name": "orders",
			"messaging.destination.partition.id": "0", "messaging.kafka.offset": "0", "messaging.batch.message_count": "1"},
		&proc: {"messaging.system": "kafka", "messaging.operation.type": "process", "messaging.destination.name": "orders",
			"messaging.consumer.group.name": "billing", "messaging.message.conversation_id": "flow-1", "spool.verdict": "success"},
	} {
		got := spanAttrs(s.span)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", s.span.Name, k, got[k], v)
			}
		}
	}
}
