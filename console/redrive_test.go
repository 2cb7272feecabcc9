package console_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/console"
	"github.com/spoolmq/spool/internal/kafkatest"
)

// produceDLQ produces n dead letters to dlq as the agent writes them:
// originally from topic orig (partition i%2, offset i), reason reasons[i%len],
// key "k<i%keys>", value "v<i>". It returns them in produce order.
func produceDLQ(t testing.TB, addrs []string, dlq, orig string, n, keys int, reasons ...string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	now := time.Now()
	var recs []*kgo.Record
	for i := range n {
		src := &kgo.Record{Topic: orig, Partition: int32(i % 2), Offset: int64(i), Timestamp: now,
			Key:     []byte("k" + strconv.Itoa(i%keys)),
			Value:   []byte("v" + strconv.Itoa(i)),
			Headers: []kgo.RecordHeader{{Key: "ce_type", Value: []byte("order.placed")}, {Key: "seq", Value: []byte(strconv.Itoa(i))}}}
		reason := reasons[i%len(reasons)]
		recs = append(recs, agent.DeadLetterRecord(dlq, src, "billing", reason, 3, fmt.Errorf("boom %s #%d", reason, i%3), now))
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce dead letters: %v", err)
	}
	return recs
}

func dlqHeader(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// dlqCheckRedriven checks that got are exactly the records of want (dead
// letters) in order per key, as redrive id made them.
func dlqCheckRedriven(t *testing.T, got []*kgo.Record, want []*kgo.Record, id string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("target has %d records, want %d", len(got), len(want))
	}
	perKey := func(rs []*kgo.Record) map[string][]string {
		m := map[string][]string{}
		for _, r := range rs {
			m[string(r.Key)] = append(m[string(r.Key)], string(r.Value))
		}
		return m
	}
	g, w := perKey(got), perKey(want)
	for k, vs := range w {
		if strings.Join(g[k], ",") != strings.Join(vs, ",") {
			t.Fatalf("key %s: got %v, want %v (in order)", k, g[k], vs)
		}
	}
	for _, r := range got {
		if v, _ := dlqHeader(r, console.HeaderRedriveID); v != id {
			t.Fatalf("record %s: spool_redrive_id %q, want %q", r.Value, v, id)
		}
		if v, _ := dlqHeader(r, console.HeaderRedriveAt); v == "" {
			t.Fatalf("record %s: no spool_redrive_at", r.Value)
		}
		if v, _ := dlqHeader(r, console.HeaderRedriveOf); !strings.Contains(v, ".dlq/") {
			t.Fatalf("record %s: spool_redrive_of %q", r.Value, v)
		}
		for _, h := range r.Headers {
			if strings.HasPrefix(h.Key, "dlq_") {
				t.Fatalf("record %s kept dead-letter header %s", r.Value, h.Key)
			}
		}
		if v, _ := dlqHeader(r, "ce_type"); v != "order.placed" {
			t.Fatalf("record %s lost its own headers: %v", r.Value, r.Headers)
		}
	}
}

func TestRedriveEngine(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "eng-orders", 3)
		kafkatest.CreateTopic(t, addrs, "eng-orders.dlq", 2)
		recs := produceDLQ(t, addrs, "eng-orders.dlq", "eng-orders", 200, 7, agent.ReasonRetriesExhausted, agent.ReasonDeadLetter)
		opts := []kgo.Opt{kgo.SeedBrokers(addrs...)}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		spec := console.RedriveSpec{DLQ: "eng-orders.dlq", Select: console.Selection{Reasons: []string{agent.ReasonDeadLetter}}}

		plan, err := console.PlanRedrive(ctx, opts, spec)
		if err != nil {
			t.Fatal(err)
		}
		if plan.Scanned != 200 || plan.Matched != 100 || plan.Redrive != 100 || plan.ByTarget["eng-orders"] != 100 ||
			plan.ByReason[agent.ReasonDeadLetter] != 100 || len(plan.Sample) != 5 || len(plan.MissingTargets) != 0 {
			t.Fatalf("plan: %+v", plan)
		}
		if got := kafkatest.ReadAll(t, addrs, "eng-orders"); len(got) != 0 {
			t.Fatalf("the dry run produced %d records", len(got))
		}

		spec.Through = plan.Through
		rep, err := console.Redrive(ctx, opts, spec, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Redriven != 100 || rep.Failed != 0 || rep.Skipped != 0 || rep.Matched != 100 || rep.Records != 200 || !rep.Done() || rep.JournalError != "" {
			t.Fatalf("report: %+v", rep)
		}
		var want []*kgo.Record
		for _, r := range recs {
			if v, _ := dlqHeader(r, "dlq_reason"); v == agent.ReasonDeadLetter {
				want = append(want, r)
			}
		}
		got := kafkatest.ReadAll(t, addrs, "eng-orders")
		dlqCheckRedriven(t, got, want, rep.ID)
		for _, r := range got { // back in their original partitions
			seq, _ := dlqHeader(r, "seq")
			i, _ := strconv.Atoi(seq)
			if r.Partition != int32(i%2) {
				t.Fatalf("record %s in partition %d, want its original %d", r.Value, r.Partition, i%2)
			}
		}

		// A second dry run sees the journal: those 100 were redriven.
		plan, err = console.PlanRedrive(ctx, opts, spec)
		if err != nil {
			t.Fatal(err)
		}
		if plan.Matched != 100 || plan.AlreadyRedriven != 100 || plan.Redrive != 0 {
			t.Fatalf("second plan: %+v", plan)
		}
		spec.Again = true
		if plan, err = console.PlanRedrive(ctx, opts, spec); err != nil || plan.Redrive != 100 {
			t.Fatalf("second plan with Again: %+v %v", plan, err)
		}
		if dlq := kafkatest.ReadAll(t, addrs, "eng-orders.dlq"); len(dlq) != 200 {
			t.Fatalf("the dead-letter topic has %d records after the redrive, want 200", len(dlq))
		}
	})
}

// A target the broker refuses (missing, record too large) fails those
// records, reported one by one; the others are redriven and the
// dead-letter topic keeps everything.
func TestRedriveRefusedTarget(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "ref.dlq", 1)
		dlqCreateTopic(t, addrs, "ref-small", "max.message.bytes", "1024")
		cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		now := time.Now()
		dl := func(orig, key string, size int) *kgo.Record {
			v := make([]byte, size)
			rand.Read(v) // incompressible: the broker sees its real size
			src := &kgo.Record{Topic: orig, Key: []byte(key), Value: v, Timestamp: now}
			return agent.DeadLetterRecord("ref.dlq", src, "g", agent.ReasonDeadLetter, 1, errors.New("bad"), now)
		}
		if err := cl.ProduceSync(ctx, dl("ref-gone", "a", 10), dl("ref-small", "b", 10), dl("ref-small", "c", 4000), dl("ref-gone", "d", 10)).FirstErr(); err != nil {
			t.Fatal(err)
		}
		opts := []kgo.Opt{kgo.SeedBrokers(addrs...)}
		spec := console.RedriveSpec{DLQ: "ref.dlq"}
		plan, err := console.PlanRedrive(ctx, opts, spec)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(plan.MissingTargets, ",") != "ref-gone" || plan.Redrive != 4 {
			t.Fatalf("plan: %+v", plan)
		}
		rep, err := console.Redrive(ctx, opts, spec, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Redriven != 1 || rep.Failed != 3 || len(rep.Failures) != 3 {
			t.Fatalf("report: %+v", rep)
		}
		byKey := map[string]console.RedriveFailure{}
		for _, f := range rep.Failures {
			byKey[f.Key] = f
		}
		if f := byKey["a"]; f.Target != "ref-gone" || !strings.Contains(f.Error, "does not exist") {
			t.Errorf("failure of a: %+v", f)
		}
		if f := byKey["c"]; f.Target != "ref-small" || !strings.Contains(f.Error, "MESSAGE_TOO_LARGE") {
			t.Errorf("failure of c: %+v", f)
		}
		if got := kafkatest.ReadAll(t, addrs, "ref-small"); len(got) != 1 || string(got[0].Key) != "b" {
			t.Fatalf("ref-small has %d records", len(got))
		}
		if dlq := kafkatest.ReadAll(t, addrs, "ref.dlq"); len(dlq) != 4 {
			t.Fatalf("the dead-letter topic has %d records, want 4", len(dlq))
		}
		// The failed ones are not marked: the next dry run counts them again.
		plan, err = console.PlanRedrive(ctx, opts, spec)
		if err != nil || plan.AlreadyRedriven != 1 || plan.Redrive != 3 {
			t.Fatalf("plan after: %+v %v", plan, err)
		}
	})
}

// dlqCreateTopic creates a one-partition topic with one config set.
func dlqCreateTopic(t testing.TB, addrs []string, topic, key, value string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, 1, -1, map[string]*string{key: &value}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create %s with %s=%s: %v", topic, key, value, err)
	}
}
