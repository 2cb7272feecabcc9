package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/spooltest"
)

// clusters are the brokers every bench test runs against: Spool and
// franz-go's kfake.
var clusters = []struct {
	name  string
	start func(t *testing.T) string
}{
	{"spool", func(t *testing.T) string { return spooltest.Start(t).Addr() }},
	{"kfake", func(t *testing.T) string {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c.ListenAddrs()[0]
	}},
}

func eachCluster(t *testing.T, fn func(t *testing.T, addr string)) {
	for _, c := range clusters {
		t.Run(c.name, func(t *testing.T) { fn(t, c.start(t)) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func checkLatency(t *testing.T, what string, l *Latency, count int64) {
	t.Helper()
	if l == nil {
		t.Fatalf("%s: no latency", what)
	}
	if l.Count != count {
		t.Fatalf("%s: %d samples, want %d", what, l.Count, count)
	}
	if !(l.P50 > 0 && l.P50 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Fatalf("%s: percentiles out of order or zero: %+v", what, l)
	}
}

func TestRunAll(t *testing.T) {
	eachCluster(t, func(t *testing.T, addr string) {
		var progress bytes.Buffer
		res, err := Run(ctx(t), Config{
			Brokers: []string{addr}, Topic: "b", Partitions: 4, Records: 2000,
			RecordSize: 100, Keys: 10, Linger: time.Millisecond, Compression: "lz4", Producers: 3,
			Progress: &progress, ProgressInterval: time.Millisecond,
		})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if p := res.Produce; p.Records != 2000 || p.Bytes != 200_000 || p.Errors != 0 || p.RecordsPerSec <= 0 || p.MBPerSec <= 0 {
			t.Fatalf("produce = %+v, want 2000 records, 200000 bytes, no errors", p)
		}
		if c := res.Consume; c == nil || c.Records != 2000 || c.Bytes != 200_000 || c.RecordsPerSec <= 0 {
			t.Fatalf("consume = %+v, want 2000 records, 200000 bytes", c)
		}
		checkLatency(t, "end-to-end", res.EndToEnd, 2000)
		checkLatency(t, "produce ack", res.ProduceLatency, 2000)
		if res.Partitions != 4 {
			t.Fatalf("partitions = %d, want 4", res.Partitions)
		}

		// A named topic is kept, and its records are spread over the
		// partitions by key; a consume
		// run reads them all back.
		cres, err := Run(ctx(t), Config{Brokers: []string{addr}, Topic: "b", Mode: ModeConsume})
		if err != nil {
			t.Fatalf("Run consume: %v", err)
		}
		if c := cres.Consume; c.Records != 2000 || c.Bytes != 200_000 {
			t.Fatalf("consume-only run = %+v, want 2000 records, 200000 bytes", c)
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ends, err := kadm.NewClient(cl).ListEndOffsets(ctx(t), "b")
		if err != nil {
			t.Fatal(err)
		}
		nonEmpty := 0
		ends.Each(func(o kadm.ListedOffset) {
			if o.Offset > 0 {
				nonEmpty++
			}
		})
		if nonEmpty < 2 {
			t.Fatalf("10 keys landed in %d of 4 partitions, want them spread", nonEmpty)
		}
	})
}

func TestRunNoTail(t *testing.T) {
	eachCluster(t, func(t *testing.T, addr string) {
		res, err := Run(ctx(t), Config{Brokers: []string{addr}, Records: 300, RecordSize: 32, NoTail: true})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if res.Produce.Records != 300 || res.Consume == nil || res.Consume.Records != 300 || res.EndToEnd != nil {
			t.Fatalf("no-tail run = %+v, want 300 produced and consumed and no end-to-end latency", res)
		}
	})
}

func TestRunProduceRateDeletesTopic(t *testing.T) {
	eachCluster(t, func(t *testing.T, addr string) {
		res, err := Run(ctx(t), Config{Brokers: []string{addr}, Mode: ModeProduce, Records: 50, Rate: 5000,
			RecordSize: 8, Acks: "1", Partitions: 1})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if res.Produce.Records != 50 || res.Consume != nil || res.EndToEnd != nil {
			t.Fatalf("produce-only run = %+v, want 50 produced and nothing consumed", res)
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		topics, err := kadm.NewClient(cl).ListTopics(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if topics.Has(res.Topic) {
			t.Fatalf("topic %s created by the run still exists", res.Topic)
		}
	})
}

func TestRunErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "no brokers"},
		{Config{Brokers: []string{"x:1"}, RecordSize: 4}, "minimum 8"},
		{Config{Brokers: []string{"x:1"}, Acks: "0"}, "acks=0"},
		{Config{Brokers: []string{"x:1"}, Acks: "2"}, "bad acks"},
		{Config{Brokers: []string{"x:1"}, Compression: "brotli"}, "unknown compression"},
		{Config{Brokers: []string{"x:1"}, Mode: "both"}, "unknown mode"},
		{Config{Brokers: []string{"x:1"}, Rate: -1}, "negative"},
		{Config{Brokers: []string{"x:1"}, Producers: -1}, "negative"},
	} {
		if _, err := Run(context.Background(), tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Run(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
	eachCluster(t, func(t *testing.T, addr string) {
		_, err := Run(ctx(t), Config{Brokers: []string{addr}, Topic: "missing", Mode: ModeConsume})
		if err == nil || !strings.Contains(err.Error(), "UNKNOWN_TOPIC_OR_PARTITION") {
			t.Fatalf("consume of a missing topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
		}
	})
}
