package agent_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/producer"
)

// TestTracing: one trace runs from the producer through the agent and on to
// what the handler publishes: send orders -> process orders -> send
// payments, each with the messaging semantic-convention attributes, the
// process span linked to the send span it continues, and the verdict on it.
func TestTracing(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		const topic, group = "traced-orders", "traced-g"
		for _, tp := range []string{topic, topic + "-payments", topic + ".dlq"} {
			kafkatest.CreateTopic(t, addrs, tp, 1)
		}
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		defer tp.Shutdown(context.Background())

		p, err := producer.New(producer.WithBrokers(addrs...), producer.WithSource("/test"), producer.WithTracerProvider(tp))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		ctx, root := tp.Tracer("test").Start(context.Background(), "checkout")
		ok, _ := event.New("order.placed", event.Raw, "o-1")
		ok.Key, ok.CorrelationID = []byte("customer-1"), "flow-1"
		okRec, err := p.Publish(ctx, topic, ok)
		if err != nil {
			t.Fatal(err)
		}
		bad, _ := event.New("order.bad", event.Raw, "o-2")
		bad.Key = []byte("customer-2")
		if _, err := p.Publish(ctx, topic, bad); err != nil {
			t.Fatal(err)
		}
		root.End()

		r := start(t, group, []string{topic}, append(fastOpts(addrs), agent.WithTracerProvider(tp),
			agent.WithHandler("order.placed", func(ctx context.Context, m *agent.Message) error {
				next, _ := event.New("payment.requested", event.Raw, "pay")
				_, err := p.Publish(ctx, topic+"-payments", next)
				return err
			}),
			agent.WithHandler("order.bad", func(context.Context, *agent.Message) error { return agent.DeadLetter(errBoom) }),
		)...)
		waitCommitted(t, addrs, group, topic, map[int32]int64{0: 2})
		r.shutdown(t)

		spans := map[string][]sdktrace.ReadOnlySpan{}
		for _, s := range rec.Ended() {
			spans[s.Name()] = append(spans[s.Name()], s)
		}
		sends, procs, pays := spans["send "+topic], spans["process "+topic], spans["send "+topic+"-payments"]
		if len(sends) != 2 || len(procs) != 2 || len(pays) != 1 {
			t.Fatalf("spans %v", names(rec.Ended()))
		}
		send, proc := sends[0], procs[0]
		for _, s := range procs {
			if attrOf(s, "messaging.message.id") == ok.ID {
				proc = s
			}
		}
		for _, s := range sends {
			if attrOf(s, "messaging.message.id") == ok.ID {
				send = s
			}
		}
		traceID := root.SpanContext().TraceID()
		for _, s := range []sdktrace.ReadOnlySpan{send, proc, pays[0]} {
			if s.SpanContext().TraceID() != traceID {
				t.Errorf("%s is in trace %s, want the producer's %s", s.Name(), s.SpanContext().TraceID(), traceID)
			}
		}
		if send.SpanKind() != trace.SpanKindProducer || send.Parent().SpanID() != root.SpanContext().SpanID() {
			t.Errorf("send span: kind %v parent %v", send.SpanKind(), send.Parent().SpanID())
		}
		if proc.SpanKind() != trace.SpanKindConsumer || proc.Parent().SpanID() != send.SpanContext().SpanID() {
			t.Errorf("process span: kind %v, parent %v, want the send span %v", proc.SpanKind(), proc.Parent().SpanID(), send.SpanContext().SpanID())
		}
		if l := proc.Links(); len(l) != 1 || l[0].SpanContext.SpanID() != send.SpanContext().SpanID() {
			t.Errorf("process span links %v, want the send span", l)
		}
		if pays[0].Parent().SpanID() != proc.SpanContext().SpanID() {
			t.Errorf("the handler's publish is not a child of its process span")
		}
		want := map[string]string{
			"messaging.system": "kafka", "messaging.operation.name": "send", "messaging.operation.type": "send",
			"messaging.destination.name": topic, "messaging.kafka.message.key": "customer-1",
			"messaging.message.id": ok.ID, "messaging.message.conversation_id": "flow-1",
			"messaging.destination.partition.id": "0", "messaging.kafka.offset": "0",
		}
		checkAttrs(t, send, want)
		want["messaging.operation.name"], want["messaging.operation.type"] = "process", "process"
		want["messaging.consumer.group.name"], want["spool.verdict"] = group, "success"
		checkAttrs(t, proc, want)
		if okRec.Offset != 0 {
			t.Fatalf("offset %d", okRec.Offset)
		}

		var badProc sdktrace.ReadOnlySpan
		for _, s := range procs {
			if attrOf(s, "messaging.message.id") == bad.ID {
				badProc = s
			}
		}
		if badProc == nil || attrOf(badProc, "spool.verdict") != "dead-letter" || badProc.Status().Code != codes.Error {
			t.Fatalf("dead-lettered event's span: %v", badProc)
		}
	})
}

func names(ss []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name())
	}
	return out
}

func attrOf(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

func checkAttrs(t *testing.T, s sdktrace.ReadOnlySpan, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := attrOf(s, k); got != v {
			t.Errorf("%s: %s = %q, want %q", s.Name(), k, got, v)
		}
	}
}
