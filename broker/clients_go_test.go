package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/spoolmq/spool/spooltest"
)

// These tests run the other two common Go Kafka clients, IBM/sarama and
// segmentio/kafka-go, against the broker: produce with acks=all, consume in
// a group with commits, and resume from the committed offsets in a second
// session. Both are plain Go modules, so they always run.

// goClientPartitions is the partition count of the topics below.
const goClientPartitions = 3

// consumed is one record as a consumer saw it.
type consumed struct {
	partition int32
	offset    int64
	value     string
}

// produced maps partition -> offset -> value of every acknowledged record.
type produced map[int32]map[int64]string

func (p produced) add(partition int32, offset int64, value string) {
	if p[partition] == nil {
		p[partition] = map[int64]string{}
	}
	p[partition][offset] = value
}

// checkConsumed asserts that got holds, for each partition, exactly the
// records at offsets [from[p], end of want[p]) with their produced values,
// each once and in offset order: nothing lost, nothing duplicated, nothing
// already committed read again.
func checkConsumed(t *testing.T, label string, got []consumed, want produced, from map[int32]int64) {
	t.Helper()
	next := map[int32]int64{}
	for p := range want {
		next[p] = from[p]
	}
	for _, r := range got {
		if r.offset != next[r.partition] {
			t.Fatalf("%s: partition %d: got offset %d, want %d (the committed offset, then one by one)", label, r.partition, r.offset, next[r.partition])
		}
		if v := want[r.partition][r.offset]; v != r.value {
			t.Fatalf("%s: partition %d offset %d: value %q, want the produced %q", label, r.partition, r.offset, r.value, v)
		}
		next[r.partition]++
	}
	for p, recs := range want {
		if end := int64(len(recs)); next[p] != end {
			t.Fatalf("%s: partition %d: consumed up to offset %d, want %d", label, p, next[p], end)
		}
	}
}

// checkCommitted asserts that group's committed offset of every partition of
// topic is its end offset.
func checkCommitted(t *testing.T, adm *kadm.Client, group, topic string, want produced) {
	t.Helper()
	offs, err := adm.FetchOffsets(testCtx(t), group)
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	for p, recs := range want {
		o, ok := offs.Lookup(topic, p)
		if !ok || o.Err != nil || o.At != int64(len(recs)) {
			t.Fatalf("group %s committed offset of %s/%d: %+v (found %v), want %d", group, topic, p, o, ok, len(recs))
		}
	}
}

// collect reads n records from ch, failing the test at the deadline or if
// errs yields an error first.
func collect(t *testing.T, label string, ch <-chan consumed, errs <-chan error, n int) []consumed {
	t.Helper()
	ctx := testCtx(t)
	var got []consumed
	for len(got) < n {
		select {
		case r := <-ch:
			got = append(got, r)
		case err := <-errs:
			t.Fatalf("%s: client error after %d of %d records: %v", label, len(got), n, err)
		case <-ctx.Done():
			t.Fatalf("%s: consumed %d of %d records within %v", label, len(got), n, testTimeout)
		}
	}
	return got
}

// saramaHandler marks, commits (synchronously) and then forwards every
// record, so a record the test has seen is committed.
type saramaHandler struct{ out chan<- consumed }

func (saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h saramaHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			sess.MarkMessage(msg, "")
			sess.Commit()
			select {
			case h.out <- consumed{msg.Partition, msg.Offset, string(msg.Value)}:
			case <-sess.Context().Done():
				return nil
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}

// TestSarama: an idempotent acks=all SyncProducer, then a ConsumerGroup
// that commits every record; a second ConsumerGroup session in the same
// group reads only what was produced after. Run at sarama's default
// protocol version and at the newest one it knows.
func TestSarama(t *testing.T) {
	for _, v := range []sarama.KafkaVersion{sarama.DefaultVersion, sarama.MaxVersion} {
		t.Run("kafka-"+v.String(), func(t *testing.T) { testSarama(t, v) })
	}
}

func testSarama(t *testing.T, version sarama.KafkaVersion) {
	const topic, group = "sarama", "sarama-group"
	srv := spooltest.Start(t)
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, topic, goClientPartitions, nil)

	cfg := sarama.NewConfig()
	cfg.Version = version
	cfg.ClientID = "sarama-test"
	cfg.Metadata.Retry.Backoff = 10 * time.Millisecond
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Return.Errors = true
	// The consumer's commits share a connection with its fetches, and a
	// broker (Kafka, Spool) answers one connection's requests in order: a
	// commit waits behind a fetch long poll. A short poll keeps the
	// commit-every-record loop fast.
	cfg.Consumer.MaxWaitTime = 20 * time.Millisecond

	pcfg := *cfg
	pcfg.Producer.RequiredAcks = sarama.WaitForAll
	pcfg.Producer.Idempotent = true
	pcfg.Net.MaxOpenRequests = 1 // required by sarama for idempotence
	pcfg.Producer.Return.Successes = true
	pcfg.Producer.Partitioner = sarama.NewManualPartitioner
	prod, err := sarama.NewSyncProducer([]string{srv.Addr()}, &pcfg)
	if err != nil {
		t.Fatalf("sarama.NewSyncProducer: %v", err)
	}
	defer prod.Close()
	want := produced{}
	send := func(from, to int) {
		t.Helper()
		var msgs []*sarama.ProducerMessage
		for i := from; i < to; i++ {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: int32(i % goClientPartitions), Value: sarama.StringEncoder(strconv.Itoa(i))})
		}
		if err := prod.SendMessages(msgs); err != nil {
			t.Fatalf("sarama SendMessages: %v", err)
		}
		for _, m := range msgs {
			want.add(m.Partition, m.Offset, string(m.Value.(sarama.StringEncoder)))
		}
	}
	// run consumes n records in one ConsumerGroup session and closes it
	// (LeaveGroup).
	run := func(label string, n int) []consumed {
		t.Helper()
		cg, err := sarama.NewConsumerGroup([]string{srv.Addr()}, group, cfg)
		if err != nil {
			t.Fatalf("sarama.NewConsumerGroup: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		out, errs := make(chan consumed), make(chan error, 1)
		report := func(err error) {
			select {
			case errs <- err:
			default:
			}
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			for ctx.Err() == nil {
				if err := cg.Consume(ctx, []string{topic}, saramaHandler{out}); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
					report(fmt.Errorf("Consume: %w", err))
					return
				}
			}
		})
		wg.Go(func() { // until Close closes it
			for err := range cg.Errors() {
				report(err)
			}
		})
		got := collect(t, label, out, errs, n)
		cancel()
		closed := cg.Close()
		wg.Wait()
		if closed != nil {
			t.Fatalf("%s: close consumer group: %v", label, closed)
		}
		return got
	}

	send(0, 30)
	checkConsumed(t, "first session", run("first session", 30), want, nil)
	checkCommitted(t, adm, group, topic, want)

	from := map[int32]int64{}
	for p, recs := range want {
		from[p] = int64(len(recs))
	}
	send(30, 45)
	checkConsumed(t, "second session", run("second session", 15), want, from)
	checkCommitted(t, adm, group, topic, want)

	// The producer was idempotent: its batches carry a producer ID and
	// sequence numbers.
	for _, r := range consumeN(t, srv, topic, 45) {
		if r.ProducerID < 0 {
			t.Fatalf("record %s/%d@%d has no producer ID: the sarama producer was not idempotent", r.Topic, r.Partition, r.Offset)
		}
	}
}

// partitionByKey sends a kafka-go message to the partition its key names.
var partitionByKey = kafka.BalancerFunc(func(msg kafka.Message, partitions ...int) int {
	p, _ := strconv.Atoi(string(msg.Key))
	return p
})

// TestKafkaGo: a Writer with RequireAll, then a Reader with a GroupID that
// commits every record; a second Reader in the same group reads only what
// was written after.
func TestKafkaGo(t *testing.T) {
	const topic, group = "kafkago", "kafkago-group"
	srv := spooltest.Start(t)
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, topic, goClientPartitions, nil)

	w := &kafka.Writer{
		Addr:         kafka.TCP(srv.Addr()),
		Topic:        topic,
		Balancer:     partitionByKey,
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond,
	}
	defer w.Close()
	want := produced{}
	write := func(from, to int) {
		t.Helper()
		var msgs []kafka.Message
		for i := from; i < to; i++ {
			msgs = append(msgs, kafka.Message{Key: []byte(strconv.Itoa(i % goClientPartitions)), Value: []byte(strconv.Itoa(i))})
		}
		if err := w.WriteMessages(testCtx(t), msgs...); err != nil {
			t.Fatalf("kafka-go WriteMessages: %v", err)
		}
		// One synchronous WriteMessages keeps the order within a partition,
		// and the partition was empty or fully recorded before.
		for _, m := range msgs {
			p := int32(m.Key[0] - '0')
			want.add(p, int64(len(want[p])), string(m.Value))
		}
	}
	// run reads n records with one group Reader, committing each
	// synchronously before handing it over, and closes it (LeaveGroup).
	run := func(label string, n int) []consumed {
		t.Helper()
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers:           []string{srv.Addr()},
			GroupID:           group,
			Topic:             topic,
			StartOffset:       kafka.FirstOffset,
			MaxWait:           100 * time.Millisecond,
			HeartbeatInterval: time.Second,
			SessionTimeout:    10 * time.Second,
			RebalanceTimeout:  10 * time.Second,
			CommitInterval:    0, // CommitMessages is synchronous
			ErrorLogger: kafka.LoggerFunc(func(format string, args ...any) {
				t.Logf("kafka-go: "+format, args...)
			}),
		})
		ctx, cancel := context.WithCancel(context.Background())
		out, errs := make(chan consumed), make(chan error, 1)
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				m, err := r.FetchMessage(ctx)
				if err == nil {
					err = r.CommitMessages(ctx, m)
				}
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					errs <- err
					return
				}
				select {
				case out <- consumed{int32(m.Partition), m.Offset, string(m.Value)}:
				case <-ctx.Done():
					return
				}
			}
		})
		got := collect(t, label, out, errs, n)
		cancel()
		wg.Wait()
		if err := r.Close(); err != nil {
			t.Fatalf("%s: close reader: %v", label, err)
		}
		return got
	}

	write(0, 30)
	checkConsumed(t, "first reader", run("first reader", 30), want, nil)
	checkCommitted(t, adm, group, topic, want)

	from := map[int32]int64{}
	for p, recs := range want {
		from[p] = int64(len(recs))
	}
	write(30, 45)
	checkConsumed(t, "second reader", run("second reader", 15), want, from)
	checkCommitted(t, adm, group, topic, want)
}
