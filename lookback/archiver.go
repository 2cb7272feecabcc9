package lookback

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// archiverClient opens the archiver's consumer: its own group on a regex
// subscription, manual commits, no rebalance while a batch is in hand.
func (s *Service) archiverClient() (*kgo.Client, error) {
	opts := append([]kgo.Opt{kgo.SeedBrokers(s.cfg.Brokers...)}, s.cfg.ClientOptions...)
	opts = append(opts,
		kgo.ConsumerGroup(s.cfg.Group),
		kgo.ConsumeRegex(),
		kgo.ConsumeTopics(s.cfg.Include...),
		kgo.ConsumeExcludeTopics(`^__.*`, `^spool\.replay\..*`),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.MetadataMaxAge(s.cfg.MetadataMaxAge),
		kgo.MetadataMinAge(min(s.cfg.MetadataMaxAge, 5*time.Second)),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if len(s.cfg.Exclude) > 0 {
		opts = append(opts, kgo.ConsumeExcludeTopics(s.cfg.Exclude...))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, errors.Join(errors.New("lookback: archiver client"), err)
	}
	return cl, nil
}

// archive is the archiver's loop: poll, make the batch durable in the
// store (retrying until it is), feed the rules, commit. Nothing is
// committed that the store has not made durable, so a crash at any point
// redelivers at most the uncommitted tail, which Append ignores.
func (s *Service) archive(ctx context.Context, cl *kgo.Client) {
	log := s.cfg.Logger
	for {
		fs := cl.PollRecords(ctx, 5000)
		if ctx.Err() != nil {
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				log.Warn("lookback: fetch error", "topic", t, "partition", p, "err", err)
			}
		})
		krs := fs.Records()
		if len(krs) == 0 {
			cl.AllowRebalance()
			continue
		}
		rs := make([]Record, 0, len(krs))
		var receipts []Receipt
		bytes := 0
		for _, kr := range krs {
			if s.excluded(kr.Topic) {
				continue
			}
			r := fromKgo(kr)
			rs = append(rs, r)
			bytes += len(kr.Key) + len(kr.Value)
			if kr.Topic == s.cfg.ReceiptsTopic {
				if rc, ok := parseReceipt(kr.Value); ok {
					receipts = append(receipts, rc)
				} else {
					log.Warn("lookback: not a receipt", "topic", kr.Topic, "partition", kr.Partition, "offset", kr.Offset)
				}
			}
		}
		start := time.Now()
		// Receipts first: once a receipt record is searchable, so is
		// what it says.
		if !s.durably(ctx, func() error { return s.cfg.Store.AddReceipts(ctx, receipts) }) {
			return
		}
		if !s.durably(ctx, func() error { return s.cfg.Store.Append(ctx, rs) }) {
			return
		}
		s.cfg.Hooks.Archived(len(rs), bytes, time.Since(start))
		s.rules.observe(rs)
		if err := cl.CommitRecords(ctx, krs...); err != nil && ctx.Err() == nil {
			// Not fatal: the records are archived; a redelivery is ignored.
			log.Warn("lookback: commit failed", "err", err)
		}
		cl.AllowRebalance()
	}
}

// durably runs op until it succeeds, backing off from 100ms to 10s, and
// reports false if ctx ended first. A store that cannot write (a full
// disk) stops ingestion here, with nothing committed, until it can.
func (s *Service) durably(ctx context.Context, op func() error) bool {
	backoff := 100 * time.Millisecond
	for {
		err := op()
		if err == nil {
			s.setErr(nil)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		s.cfg.Hooks.StoreFailed(err)
		s.setErr(err)
		s.cfg.Logger.Error("lookback: store write failed; ingestion paused, retrying", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func (s *Service) setErr(err error) {
	s.mu.Lock()
	s.mu.lastErr = err
	s.mu.Unlock()
}

// LastError returns the store error ingestion is waiting out, or nil.
func (s *Service) LastError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.lastErr
}

func fromKgo(kr *kgo.Record) Record {
	r := Record{Topic: kr.Topic, Partition: kr.Partition, Offset: kr.Offset, Timestamp: kr.Timestamp,
		Key: kr.Key, Value: kr.Value}
	if len(kr.Headers) > 0 {
		r.Headers = make([]Header, len(kr.Headers))
		for i, h := range kr.Headers {
			r.Headers[i] = Header{Key: h.Key, Value: h.Value}
		}
	}
	return r
}

// receiptWire is the JSON body of a receipt record (agent.WithReceipts).
type receiptWire struct {
	Group      string    `json:"group"`
	EventID    string    `json:"event_id"`
	Topic      string    `json:"topic"`
	Partition  int32     `json:"partition"`
	Offset     int64     `json:"offset"`
	Outcome    string    `json:"outcome"`
	Attempts   int       `json:"attempts"`
	DurationMS float64   `json:"duration_ms"`
	Time       time.Time `json:"time"`
}

func parseReceipt(b []byte) (Receipt, bool) {
	var w receiptWire
	if err := json.Unmarshal(b, &w); err != nil || w.Group == "" || w.Topic == "" || w.Outcome == "" {
		return Receipt{}, false
	}
	return Receipt{Group: w.Group, EventID: w.EventID, Topic: w.Topic, Partition: w.Partition, Offset: w.Offset,
		Outcome: strings.ToLower(w.Outcome), Attempts: w.Attempts, Duration: w.DurationMS, Time: w.Time}, true
}
