package lookback

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/trace"

	"github.com/spoolmq/spool/internal/httpapi"
	"github.com/spoolmq/spool/internal/msgtrace"
)

// Replay headers, set on every replayed record (the same names as
// agent.HeaderReplayID and agent.HeaderReplayOf; part of the wire
// contract).
const (
	HeaderReplayID = "spool_replay_id"
	HeaderReplayOf = "spool_replay_of"
)

// previewEvents is how many events a dry run shows.
const previewEvents = 10

var topicRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// replayer runs replays, one goroutine each, checkpointing in the store.
type replayer struct {
	s  *Service
	wg sync.WaitGroup
	mu struct {
		sync.Mutex
		cancels map[string]context.CancelCauseFunc
		ctx     context.Context
	}
}

func newReplayer(s *Service) *replayer {
	r := &replayer{s: s}
	r.mu.cancels = map[string]context.CancelCauseFunc{}
	return r
}

// resume restarts the replays a previous process left running.
func (r *replayer) resume(ctx context.Context) {
	r.mu.Lock()
	r.mu.ctx = ctx
	r.mu.Unlock()
	sts, err := r.s.cfg.Store.Replays(ctx)
	if err != nil {
		r.s.cfg.Logger.Error("lookback: cannot list replays to resume", "err", err)
		return
	}
	for _, st := range sts {
		if st.Status == "running" {
			r.s.cfg.Logger.Info("lookback: resuming replay from its checkpoint", "replay", st.ID, "done", st.Done, "total", st.Total)
			r.run(st)
		}
	}
}

func (r *replayer) wait() { r.wg.Wait() }

// validate checks a replay spec and resolves since to an absolute from,
// so a resumed replay selects the same events.
func (r *replayer) validate(spec *ReplaySpec, now time.Time) (Query, error) {
	q, err := spec.Filter.Query(now)
	if err != nil {
		return Query{}, err
	}
	if spec.Filter.Since != "" {
		spec.Filter.From, spec.Filter.Since = q.From.UTC().Format(time.RFC3339Nano), ""
	}
	switch {
	case spec.ToTopic != "" && spec.ToGroup != "":
		return Query{}, fmt.Errorf("%w: give to_topic or to_group, not both", ErrBadQuery)
	case spec.ToTopic != "" && !topicRE.MatchString(spec.ToTopic):
		return Query{}, fmt.Errorf("%w: to_topic %q is not a valid topic name", ErrBadQuery, spec.ToTopic)
	case spec.ToGroup != "" && !topicRE.MatchString("spool.replay."+spec.ToGroup):
		return Query{}, fmt.Errorf("%w: to_group %q cannot name a replay topic (letters, digits, '.', '_', '-')", ErrBadQuery, spec.ToGroup)
	case spec.Rate < 0:
		return Query{}, fmt.Errorf("%w: rate %v: must not be negative", ErrBadQuery, spec.Rate)
	}
	q.Oldest, q.Limit = true, min(r.s.cfg.ReplayCheckpoint, 1000)
	return q, nil
}

// Start validates spec and starts a replay (or, for a dry run, computes
// its preview and returns it done).
func (r *replayer) start(ctx context.Context, spec ReplaySpec) (ReplayState, error) {
	now := r.s.cfg.Now()
	q, err := r.validate(&spec, now)
	if err != nil {
		return ReplayState{}, err
	}
	var b [8]byte
	rand.Read(b[:])
	st := ReplayState{ID: "rp-" + now.UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:4]), Spec: spec,
		Status: "running", Created: now.UTC(), Updated: now.UTC(), ByTopic: map[string]int64{}}
	if spec.DryRun {
		if err := r.preview(ctx, q, &st); err != nil {
			return ReplayState{}, err
		}
		st.Status, st.Finished = "done", r.s.cfg.Now().UTC()
		return st, r.s.cfg.Store.SaveReplay(ctx, st)
	}
	if st.Total, err = r.count(ctx, q); err != nil {
		return ReplayState{}, err
	}
	if err := r.s.cfg.Store.SaveReplay(ctx, st); err != nil {
		return ReplayState{}, err
	}
	r.run(st)
	return st, nil
}

// count counts the events a replay will send.
func (r *replayer) count(ctx context.Context, q Query) (int64, error) {
	if c, ok := r.s.cfg.Store.(interface {
		Count(context.Context, Query) (int64, error)
	}); ok && !q.filtered() {
		return c.Count(ctx, q)
	}
	var n int64
	q.Limit = 1000
	for {
		p, err := r.s.cfg.Store.Search(ctx, q)
		if err != nil {
			return 0, err
		}
		n += int64(len(p.Events))
		if p.Next == "" {
			return n, nil
		}
		q.Cursor = p.Next
	}
}

// preview fills a dry run's counts per topic and first events.
func (r *replayer) preview(ctx context.Context, q Query, st *ReplayState) error {
	q.Limit = 1000
	for {
		p, err := r.s.cfg.Store.Search(ctx, q)
		if err != nil {
			return err
		}
		for _, e := range p.Events {
			st.ByTopic[e.Topic]++
			st.Total++
			if len(st.Preview) < previewEvents {
				st.Preview = append(st.Preview, e)
			}
		}
		if p.Next == "" {
			return nil
		}
		q.Cursor = p.Next
	}
}

func (r *replayer) run(st ReplayState) {
	// The replay's goroutine counts into its own map: the caller still
	// writes st (the API answers it) while the replay runs.
	byTopic := make(map[string]int64, len(st.ByTopic))
	maps.Copy(byTopic, st.ByTopic)
	st.ByTopic = byTopic
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.ctx == nil {
		return
	}
	// The replay's state is its goroutine's own: the caller keeps (and
	// encodes) the state it passed in, so the counts map is not shared.
	st.ByTopic = maps.Clone(st.ByTopic)
	if st.ByTopic == nil {
		st.ByTopic = map[string]int64{}
	}
	ctx, cancel := context.WithCancelCause(r.mu.ctx)
	r.mu.cancels[st.ID] = cancel
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer cancel(nil)
		err := r.replay(ctx, &st)
		r.mu.Lock()
		delete(r.mu.cancels, st.ID)
		r.mu.Unlock()
		switch {
		case err == nil:
			st.Status = "done"
		case errors.Is(err, errCancelled):
			st.Status = "cancelled"
		case ctx.Err() != nil:
			return // shutting down: the checkpoint says "running", resume continues it
		default:
			st.Status, st.Error = "failed", err.Error()
			r.s.cfg.Logger.Error("lookback: replay failed", "replay", st.ID, "err", err)
		}
		st.Updated, st.Finished = r.s.cfg.Now().UTC(), r.s.cfg.Now().UTC()
		if err := r.s.cfg.Store.SaveReplay(context.WithoutCancel(ctx), st); err != nil {
			r.s.cfg.Logger.Error("lookback: replay state not saved", "replay", st.ID, "err", err)
		}
	}()
}

var errCancelled = errors.New("lookback: replay cancelled")

func (r *replayer) cancel(ctx context.Context, id string) (ReplayState, error) {
	st, err := r.s.cfg.Store.Replay(ctx, id)
	if err != nil {
		return st, err
	}
	r.mu.Lock()
	c := r.mu.cancels[id]
	r.mu.Unlock()
	if c == nil || st.Status != "running" {
		return st, nil
	}
	st.Status = "cancelling"
	c(errCancelled)
	return st, nil
}

// replay produces the selection from st's checkpoint on, page by page,
// without waiting for the broker: the checkpoint (st's cursor, done and
// counts per topic) follows the acknowledgements (ackTracker) and is
// saved each time it has moved ReplayCheckpoint events on. A crash sends
// again what was sent after the saved checkpoint (at least once): the
// events acknowledged since it was saved (fewer than ReplayCheckpoint)
// and those in flight (at most ReplayCheckpoint/2, the producer's
// buffer).
func (r *replayer) replay(ctx context.Context, st *ReplayState) (err error) {
	q, err := st.Spec.Filter.Query(st.Created)
	if err != nil {
		return err
	}
	q.Oldest, q.Limit, q.Cursor = true, min(r.s.cfg.ReplayCheckpoint, 1000), st.Cursor
	spec := st.Spec
	opts := append([]kgo.Opt{kgo.SeedBrokers(r.s.cfg.Brokers...)}, r.s.cfg.ClientOptions...)
	if spec.ToTopic == "" && spec.ToGroup == "" {
		// Back to their own partitions, so keyless events keep their order too.
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	// A missing target topic is created if the broker auto-creates
	// topics; otherwise the replay fails with UNKNOWN_TOPIC_OR_PARTITION.
	opts = append(opts, kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20),
		kgo.MaxBufferedRecords(max(r.s.cfg.ReplayCheckpoint/2, 1)))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("lookback: replay client: %w", err)
	}
	var tr ackTracker
	defer func() {
		if ctx.Err() != nil {
			// A stop: let the records in flight be answered (Close
			// would fail those the broker may have written already),
			// so the resume sends again as little as it can.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			cl.Flush(fctx)
			cancel()
		}
		// Close finishes every promise (acknowledged or failed), so the
		// checkpoint is as far as the broker has the events; a stop
		// saves it for the resume. A replay that ends otherwise is saved
		// by run, with its status.
		cl.Close()
		aerr := tr.advance(st)
		switch {
		case tr.end && aerr == nil:
			// Every event is on the broker: done, even if a stop or
			// a cancel came while waiting for the last answers (a
			// replay saved running with the final, empty, cursor would
			// start over when resumed).
			st.Updated, err = r.s.cfg.Now().UTC(), nil
		case aerr != nil && err == nil:
			err = fmt.Errorf("lookback: replay produce: %w", aerr)
		case ctx.Err() != nil && context.Cause(ctx) != errCancelled:
			st.Updated = r.s.cfg.Now().UTC()
			if err := r.s.cfg.Store.SaveReplay(context.WithoutCancel(ctx), *st); err != nil {
				r.s.cfg.Logger.Error("lookback: replay checkpoint not saved", "replay", st.ID, "err", err)
			}
		}
	}()
	if spec.ToGroup != "" {
		if err := ensureTopic(ctx, cl, "spool.replay."+spec.ToGroup); err != nil {
			return err
		}
	}
	var tracer trace.Tracer
	if tp := r.s.cfg.TracerProvider; tp != nil {
		tracer = tp.Tracer(msgtrace.ScopeName)
	}
	start, sent, saved := time.Now(), int64(0), st.Done
	// checkpoint moves st's checkpoint over what the broker has
	// acknowledged, and saves it each time it has moved ReplayCheckpoint
	// events on.
	checkpoint := func() error {
		if err := tr.advance(st); err != nil {
			return fmt.Errorf("lookback: replay produce: %w", err)
		}
		if !tr.end && st.Done-saved >= int64(r.s.cfg.ReplayCheckpoint) {
			st.Updated, saved = r.s.cfg.Now().UTC(), st.Done
			return r.s.cfg.Store.SaveReplay(ctx, *st)
		}
		return nil
	}
	pages, stop := r.prefetch(ctx, q)
	defer stop()
	for {
		pg, ok := <-pages
		if !ok || pg.err != nil {
			if context.Cause(ctx) == errCancelled {
				return errCancelled
			}
			if !ok {
				return ctx.Err()
			}
			return pg.err
		}
		p := pg.page
		pa := tr.open(p)
		for _, e := range p.Events {
			if spec.Rate > 0 {
				// Pace: event n of this run goes out no earlier than n/rate.
				due := start.Add(time.Duration(float64(sent) / spec.Rate * float64(time.Second)))
				if d := time.Until(due); d > 0 {
					select {
					case <-ctx.Done():
					case <-time.After(d):
					}
				}
			}
			if err := ctx.Err(); err != nil {
				if context.Cause(ctx) == errCancelled {
					return errCancelled
				}
				return err
			}
			rec := replayRecord(e, spec, st.ID)
			var span trace.Span
			if tracer != nil {
				span = msgtrace.StartReplaySend(tracer, rec, st.ID)
			}
			cl.Produce(ctx, rec, func(rec *kgo.Record, err error) {
				if span != nil {
					msgtrace.EndSend(span, rec, err)
				}
				tr.acked(pa, err)
			})
			if sent++; sent%100 == 0 {
				if err := checkpoint(); err != nil {
					return err
				}
			}
		}
		if p.Next == "" {
			// The last page: wait for the broker, once. The deferred
			// advance then finds the replay done.
			return cl.Flush(ctx)
		}
		if err := checkpoint(); err != nil {
			return err
		}
	}
}

type prefetched struct {
	page Page
	err  error
}

// prefetch reads the pages of q, in order, one page ahead of the
// replay producing them: reading and decompressing the archive overlaps
// with producing. The channel ends with a page without Next or an
// error, and is closed if ctx ends first; stop ends the reader.
func (r *replayer) prefetch(ctx context.Context, q Query) (<-chan prefetched, func()) {
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan prefetched, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		for {
			p, err := r.s.cfg.Store.Search(ctx, q)
			select {
			case ch <- prefetched{p, err}:
			case <-ctx.Done():
				return
			}
			if err != nil || p.Next == "" {
				return
			}
			q.Cursor = p.Next
		}
	}()
	return ch, func() { cancel(); <-done }
}

// replayRecord is the record that replays e.
func replayRecord(e *Event, spec ReplaySpec, id string) *kgo.Record {
	rec := &kgo.Record{Topic: e.Topic, Partition: e.Partition, Key: e.Key, Value: e.Value}
	switch {
	case spec.ToTopic != "":
		rec.Topic = spec.ToTopic
	case spec.ToGroup != "":
		rec.Topic = "spool.replay." + spec.ToGroup
	}
	rec.Headers = make([]kgo.RecordHeader, 0, len(e.Headers)+2)
	for _, h := range e.Headers {
		if h.Key != HeaderReplayID && h.Key != HeaderReplayOf {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
	}
	rec.Headers = append(rec.Headers,
		kgo.RecordHeader{Key: HeaderReplayID, Value: []byte(id)},
		kgo.RecordHeader{Key: HeaderReplayOf, Value: []byte(e.Topic + "/" + strconv.Itoa(int(e.Partition)) + "/" + strconv.FormatInt(e.Offset, 10))})
	return rec
}

// ensureTopic creates a replay topic (one partition: a group's replay is
// one ordered sequence) unless it exists.
func ensureTopic(ctx context.Context, cl *kgo.Client, topic string) error {
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, 1, -1, nil, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("lookback: create replay topic %s: %w", topic, err)
	}
	return nil
}

func (s *Service) apiReplayStart(w http.ResponseWriter, r *http.Request) {
	var spec ReplaySpec
	if err := httpapi.DecodeJSON(w, r, 1<<20, &spec); err != nil {
		httpapi.WriteError(w, err)
		return
	}
	if err := s.mayReplay(r, spec); err != nil {
		httpapi.WriteError(w, err)
		return
	}
	st, err := s.replays.start(r.Context(), spec)
	if err != nil {
		apiError(w, err)
		return
	}
	w.Header().Set("Location", "/api/lookback/replays/"+st.ID)
	status := http.StatusAccepted
	if spec.DryRun {
		status = http.StatusOK
	}
	httpapi.WriteJSON(w, status, st)
}

func (s *Service) apiReplayList(w http.ResponseWriter, r *http.Request) {
	sts, err := s.cfg.Store.Replays(r.Context())
	if err != nil {
		apiError(w, err)
		return
	}
	// Only the replays whose source the principal may Read.
	kept := []ReplayState{}
	for _, st := range sts {
		if s.mayTopic(r, st.Spec.Filter.Topic, kmsg.ACLOperationRead) == nil {
			kept = append(kept, st)
		}
	}
	sts = kept
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"replays": sts})
}

func (s *Service) apiReplayGet(w http.ResponseWriter, r *http.Request) {
	st, err := s.cfg.Store.Replay(r.Context(), r.PathValue("id"))
	if err != nil {
		apiError(w, err)
		return
	}
	if err := s.mayTopic(r, st.Spec.Filter.Topic, kmsg.ACLOperationRead); err != nil {
		httpapi.WriteError(w, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, st)
}

func (s *Service) apiReplayCancel(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Authorizer != nil {
		st, err := s.cfg.Store.Replay(r.Context(), r.PathValue("id"))
		if err != nil {
			apiError(w, err)
			return
		}
		if err := s.mayReplay(r, st.Spec); err != nil {
			httpapi.WriteError(w, err)
			return
		}
	}
	st, err := s.replays.cancel(r.Context(), r.PathValue("id"))
	if err != nil {
		apiError(w, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, st)
}
