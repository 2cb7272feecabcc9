package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/trace"

	"github.com/spoolmq/spool/broker/producers"
	"github.com/spoolmq/spool/storage"
)

// Produce: advertised v0-11, served v3-11
//
// Behaviour:
//   - Each partition's records must be exactly one RecordBatch (magic 2),
//     stored as sent. Storage checks it as Kafka's LogValidator does
//     (storage.RecordRules): framing and CRC (else CORRUPT_MESSAGE), every
//     record parsed, decompressed within Config.MaxDecompressedBytes (else
//     CORRUPT_MESSAGE), NumRecords records with offset deltas 0..n-1, no
//     control or transactional batch (else INVALID_RECORD), CreateTime
//     timestamps within message.timestamp.before/after.max.ms (else
//     INVALID_TIMESTAMP). A refused batch writes nothing.
//   - The batches of one request (one per partition) share one
//     group-commit fsync with fsync=always: up to groupedWriteMax bytes in
//     all they are written one after the other as one commit log group
//     (storage.Store.GroupAppends: one round for the whole request), larger
//     requests' batches are appended concurrently.
//   - Pipelined: the handler returns once every batch is written (in order:
//     the next request on the connection is handled only after that); the
//     wait for durability runs in the connection's writer (request.finish,
//     see conn.go), so the next request's batches join the next fsync
//     instead of waiting for this one's.
//   - acks: 0 (no response is sent), 1 and -1 are the same on one node: the
//     response is sent when every batch is durable per the fsync mode. Any
//     other value is INVALID_REQUIRED_ACKS for every partition.
//   - A batch larger than the topic's max.message.bytes is MESSAGE_TOO_LARGE.
//   - compression.type (topic or broker default) other than "producer":
//     a batch in another codec is recompressed into that one before it is
//     appended (Kafka's LogValidator does the same); the default keeps
//     batches as produced, with no per-record work.
//   - min.insync.replicas above 1: acks=-1 is NOT_ENOUGH_REPLICAS (one
//     replica is all there is), as Kafka answers it; acks=0/1 are served.
//   - message.timestamp.type=LogAppendTime stamps the batch with the
//     broker's time, which the response carries in LogAppendTime.
//   - Unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION (Produce never
//     auto-creates; Metadata does). An internal topic (__consumer_offsets):
//     INVALID_TOPIC_EXCEPTION, as Kafka answers clients.
//   - v0-2 are advertised because old librdkafka turns compression off
//     when Produce's minimum version is above 0, but they carry message
//     formats v0/v1, which Spool does not store: every partition gets
//     UNSUPPORTED_FOR_MESSAGE_FORMAT.
//   - Transactional produce (TransactionalID set) is not supported:
//     UNSUPPORTED_VERSION with the message "transactions are not supported"
//     (v8+), which clients report as unsupported, not as an authorization
//     failure.
//
// Version notes:
//   - v3: TransactionalID, RecordBatch (magic 2); v5: LogStartOffset
//   - v8: ErrorRecords, ErrorMessage; v9: flexible; v10: CurrentLeader tags

// groupedWriteMax is the most bytes of batches that a produce request for
// several partitions writes one after the other as one commit log group;
// a larger request writes its partitions concurrently (the throughput path,
// where the batches take the per-partition fsync anyway).
const groupedWriteMax = 64 << 10

func (b *Broker) handleProduce(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)

	var fixed int16 // an error for every partition, decided up front
	switch {
	case req.Version < 3:
		fixed = kerr.UnsupportedForMessageFormat.Code
	case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
		fixed = kerr.InvalidRequiredAcks.Code
	case req.TransactionID != nil:
		fixed = kerr.UnsupportedVersion.Code
	}

	type job struct {
		sp      *kmsg.ProduceResponseTopicPartition
		log     *storage.Log
		records []byte
		cfg     *topicConfig
		pending *producers.Pending // written, waiting for durability
		topic   string
		span    trace.Span // Config.TracerProvider set: the batch's span (tracing.go)
	}
	var jobs []job
	jobBytes := 0 // of the jobs' batches
	set := b.topics()
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := &resp.Topics[i]
		*st = kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		t := set.byName[rt.Topic]
		denied := fixed == 0 && !r.allowed(resTopic, rt.Topic, opWrite)
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := &st.Partitions[j]
			*sp = kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset = -1
			sp.LogAppendTime = -1
			sp.LogStartOffset = -1
			l := t.partition(rp.Partition)
			switch {
			case fixed != 0:
				sp.ErrorCode = fixed
				if fixed == kerr.UnsupportedVersion.Code && req.Version >= 8 {
					sp.ErrorMessage = kmsg.StringPtr(errTransactions)
				}
			case denied:
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case l == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case isInternalTopic(rt.Topic):
				sp.ErrorCode = kerr.InvalidTopicException.Code
				sp.ErrorMessage = kmsg.StringPtr("cannot produce to internal topic " + rt.Topic)
			case req.Acks == -1 && t.cfg.minInsync > 1:
				sp.ErrorCode = kerr.NotEnoughReplicas.Code
				sp.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("acks=all needs min.insync.replicas=%d in-sync replicas; Spool is one node", t.cfg.minInsync))
			case len(rp.Records) > int(t.cfg.maxMessageBytes):
				sp.ErrorCode = kerr.MessageTooLarge.Code
				sp.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("batch of %d bytes is larger than max.message.bytes %d", len(rp.Records), t.cfg.maxMessageBytes))
			default:
				jobs = append(jobs, job{sp: sp, log: l, records: rp.Records, cfg: t.cfg, topic: rt.Topic})
				jobBytes += len(rp.Records)
			}
		}
	}

	// The client's request must complete once read, even if the broker
	// starts shutting down or the client goes away: never cancel appends.
	ctx := context.WithoutCancel(r.ctx)
	now := b.cfg.Now()
	fail := func(j *job, err error) {
		j.sp.ErrorCode = b.errorCode(err)
		if req.Version >= 8 {
			j.sp.ErrorMessage = errMessage(err)
		}
	}
	// Write phase, here on the connection's handler goroutine: the
	// idempotent-producer sequence check runs atomically with the append,
	// and every batch is written before the next request is handled.
	write := func(j *job) {
		if j.cfg.codec != codecProducer {
			// compression.type names a codec: store the batch in it.
			rec, err := storage.Recompress(j.records, j.cfg.codec, b.cfg.MaxDecompressedBytes)
			if err != nil {
				fail(j, err)
				return
			}
			if len(rec) > int(j.cfg.maxMessageBytes) {
				fail(j, withMessage(kerr.MessageTooLarge, fmt.Sprintf("batch of %d bytes after recompression is larger than max.message.bytes %d", len(rec), j.cfg.maxMessageBytes)))
				return
			}
			j.records = rec
		}
		opts := storage.AppendOptions{Records: &storage.RecordRules{
			MaxDecompressedBytes: b.cfg.MaxDecompressedBytes,
			Now:                  now,
			TimestampBeforeMax:   j.cfg.tsBefore,
			TimestampAfterMax:    j.cfg.tsAfter,
		}}
		if j.cfg.logAppendTime {
			opts.LogAppendTime = now
		}
		p, err := b.producers.AppendAsync(ctx, j.log, j.records, opts)
		if err != nil {
			fail(j, err)
			return
		}
		j.pending = p
		if b.tracer != nil {
			j.span = b.startBatchSpan(r, j.topic, j.sp.Partition, j.records)
		}
	}
	switch {
	case len(jobs) == 0:
	case len(jobs) == 1:
		write(&jobs[0])
	case jobBytes <= groupedWriteMax:
		// Small batches of several partitions: written one after the other
		// as one commit log group, so that the request waits for one round's
		// fsync rather than for the later of two (storage.Store.GroupAppends).
		func() {
			done := b.store.GroupAppends()
			defer done() // also if a write panics
			for i := range jobs {
				write(&jobs[i])
			}
		}()
	default:
		var wg handlerGroup // a panic in a write reaches conn.handle's recover
		for i := range jobs[1:] {
			wg.Go(func() { write(&jobs[i+1]) })
		}
		write(&jobs[0])
		wg.Wait()
	}

	// Durability phase, on the connection's writer goroutine, before the
	// response is encoded: the partitions' fsyncs run concurrently, so
	// waiting for them one by one takes as long as the slowest. A
	// duplicate waits here until its original is durable.
	written := time.Now()
	r.finish = func() error {
		turn := time.Now()
		defer func() {
			if req.Acks != 0 {
				b.metrics.observeProduce([numPhases]time.Duration{
					phaseWrite: written.Sub(r.start), phaseInOrder: turn.Sub(written), phaseDurable: time.Since(turn)})
			}
		}()
		for i := range jobs {
			j := &jobs[i]
			if j.pending == nil {
				continue // refused in the write phase
			}
			res, err := j.pending.Wait(ctx)
			if err != nil {
				fail(j, err)
				if j.span != nil {
					endBatchSpan(j.span, -1, j.sp.ErrorCode)
				}
				continue
			}
			if j.span != nil {
				endBatchSpan(j.span, res.BaseOffset, 0)
			}
			j.sp.BaseOffset = res.BaseOffset
			j.sp.LogStartOffset = res.LogStartOffset
			if j.cfg.logAppendTime {
				j.sp.LogAppendTime = now.UnixMilli()
			}
			b.metrics.produced.Add(float64(res.LastOffset - res.BaseOffset + 1))
		}
		return nil
	}
	if req.Acks == 0 {
		return nil, nil // no response, but finish still runs: the connection's bound holds
	}
	return resp, nil
}
