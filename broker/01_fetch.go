package broker

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/storage"
)

// Fetch: v4-16
//
// Behaviour:
//   - Returns whole stored batches, byte for byte (no re-encoding), from the
//     batch containing FetchOffset, up to PartitionMaxBytes per partition
//     and MaxBytes in total; the first batch of the first partition with
//     data is returned whole even when larger (KIP-74). MaxBytes is capped
//     by Config.MaxFetchBytes (fetch.max.bytes, 55 MiB): a fetch asking for
//     2 GiB gets at most that. A later partition
//     whose first batch does not fit the remaining MaxBytes gets no records.
//   - Long poll: when fewer than MinBytes are available the request waits
//     (on storage's high-watermark signal, no polling) until MinBytes are,
//     MaxWaitMillis passes (capped by Config.MaxFetchWait), the client goes
//     away or the broker shuts down; then it answers with what there is.
//   - HighWatermark, LastStableOffset (= high watermark: no transactions)
//     and LogStartOffset for every partition.
//   - FetchOffset outside [LogStartOffset, LogEndOffset]:
//     OFFSET_OUT_OF_RANGE. Unknown topic or partition:
//     UNKNOWN_TOPIC_OR_PARTITION (v13+ by ID: UNKNOWN_TOPIC_ID). Any
//     partition error answers at once.
//   - Fetch sessions (KIP-227) are not kept: the response's SessionID is 0,
//     which tells clients to send full fetch requests; a request naming a
//     session is FETCH_SESSION_ID_NOT_FOUND.
//
// Version notes:
//   - v4: IsolationLevel (read_committed = read_uncommitted without txns)
//   - v5: LogStartOffset; v7: sessions; v9: CurrentLeaderEpoch (ignored:
//     we report -1); v11: RackID (ignored); v12: flexible
//   - v13: topic IDs; v15: ReplicaState (broker-only, ignored);
//     v16: NodeEndpoints (not needed: we are always the leader)

func (b *Broker) handleFetch(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.FetchRequest)
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if req.SessionID != 0 {
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return resp, nil
	}

	// Resolve topics once; the response mirrors the request's order.
	type part struct {
		sp     *kmsg.FetchResponseTopicPartition
		log    *storage.Log
		offset int64
		max    int32
	}
	var parts []part
	set := b.topics()
	resp.Topics = make([]kmsg.FetchResponseTopic, len(req.Topics))
	failed := false
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := &resp.Topics[i]
		*st = kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		var t *topic
		if req.Version >= 13 {
			t = set.byID[rt.TopicID]
		} else {
			t = set.byName[rt.Topic]
		}
		st.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		name := rt.Topic
		if t != nil {
			name = t.name
		}
		denied := !r.allowed(resTopic, name, opRead)
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := &st.Partitions[j]
			*sp = kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			sp.RecordBatches = noRecords
			l := t.partition(rp.Partition)
			if denied {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				failed = true
				continue
			}
			if l == nil {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				if req.Version >= 13 && t == nil {
					sp.ErrorCode = kerr.UnknownTopicID.Code
				}
				failed = true
				continue
			}
			parts = append(parts, part{sp: sp, log: l, offset: rp.FetchOffset, max: rp.PartitionMaxBytes})
		}
	}

	wait := min(time.Duration(max(req.MaxWaitMillis, 0))*time.Millisecond, b.cfg.MaxFetchWait)
	var deadline <-chan time.Time
	// Watch the logs before the first read, so a high-watermark advance
	// between a read and the wait is not missed: one channel for every
	// partition, so a long poll of many partitions is one goroutine woken
	// once.
	var waiter *storage.Waiter
	if !failed && wait > 0 && len(parts) > 0 {
		waiter = storage.NewWaiter()
		for _, p := range parts {
			p.log.Watch(waiter)
		}
		defer func() {
			for _, p := range parts {
				p.log.Unwatch(waiter)
			}
		}()
	}
	for {
		var total int
		budget := int(b.cfg.MaxFetchBytes)
		if req.MaxBytes > 0 {
			budget = min(budget, int(req.MaxBytes))
		}
		for _, p := range parts {
			sp := p.sp
			// Empty, not null: librdkafka rejects a null record set
			// (size -1) as a parse failure.
			sp.RecordBatches = noRecords
			if budget <= 0 || p.max <= 0 {
				b.fillOffsets(sp, p.log)
				continue
			}
			res, err := p.log.Read(p.offset, min(int(p.max), budget))
			if err != nil {
				sp.ErrorCode = b.errorCode(err)
				b.fillOffsets(sp, p.log)
				failed = true
				continue
			}
			sp.ErrorCode = 0
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = res.HighWatermark, res.HighWatermark, res.LogStartOffset
			if n := len(res.Records); n > 0 {
				if total > 0 && n > budget {
					continue // only the first partition with data may exceed
				}
				sp.RecordBatches = res.Records
				total += n
				budget -= n
			}
		}
		if failed || total >= int(req.MinBytes) || wait <= 0 || len(parts) == 0 {
			break
		}
		if deadline == nil {
			timer := time.NewTimer(wait)
			defer timer.Stop()
			deadline = timer.C
		}
		if !waitFor(waiter.C(), deadline, r.ctx.Done()) {
			// Timed out or shutting down: one last read answers with
			// whatever arrived.
			wait = 0
		}
	}
	return resp, nil
}

var noRecords = []byte{}

func (b *Broker) fillOffsets(sp *kmsg.FetchResponseTopicPartition, l *storage.Log) {
	hw := l.HighWatermark()
	sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = hw, hw, l.LogStartOffset()
}

// waitFor blocks until signal receives (true) or deadline fires or done is
// closed (false).
func waitFor(signal <-chan struct{}, deadline <-chan time.Time, done <-chan struct{}) bool {
	select {
	case <-signal:
		return true
	case <-deadline:
	case <-done:
	}
	return false
}
