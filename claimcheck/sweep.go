package claimcheck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Sweeper defaults.
const (
	// DefaultGrace is the margin a Sweeper adds to the topics' retention:
	// a consumer that fetched a record just before the broker deleted it
	// may read its blob a while later (it was lagging, retrying, or its
	// store was down), and clocks differ between producer, broker and
	// store. One hour covers Kafka's default message.timestamp.after.max.ms
	// (a record timestamped up to an hour ahead) too.
	DefaultGrace = time.Hour
	// DefaultSweepInterval is how often a Sweeper runs.
	DefaultSweepInterval = time.Hour
)

// Expired calls fn for every blob in store written more than maxAge
// before now, until fn returns an error, which Expired returns. It is
// Sweep without the deleting (a dry run).
func Expired(ctx context.Context, store BlobStore, maxAge time.Duration, now time.Time, fn func(BlobInfo) error) error {
	if maxAge <= 0 {
		return fmt.Errorf("claimcheck: sweep: maximum age %v must be positive", maxAge)
	}
	cutoff := now.Add(-maxAge)
	return store.List(ctx, func(b BlobInfo) error {
		if b.Modified.Before(cutoff) {
			return fn(b)
		}
		return nil
	})
}

// Sweep deletes the blobs in store written more than maxAge before now,
// and returns how many it deleted. maxAge must cover the time a record
// referring to a blob can still be read: TopicRetention computes it, and
// a Sweeper runs Sweep with it periodically. On a Dir, the temporary
// files of Puts a crash cut short, older than maxAge, go too (they are not
// counted: they were never blobs). A blob that fails to delete
// is skipped and reported in the returned error; Sweep goes on with the
// others.
func Sweep(ctx context.Context, store BlobStore, maxAge time.Duration, now time.Time) (int, error) {
	if maxAge <= 0 {
		return 0, fmt.Errorf("claimcheck: sweep: maximum age %v must be positive", maxAge)
	}
	var old []string
	err := Expired(ctx, store, maxAge, now, func(b BlobInfo) error {
		old = append(old, b.Name)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("claimcheck: sweep: list: %w", err)
	}
	n := 0
	var errs []error
	if st, ok := store.(interface {
		removeStale(context.Context, time.Time) error
	}); ok {
		if err := st.removeStale(ctx, now.Add(-maxAge)); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range old {
		if err := store.Delete(ctx, name); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	if len(errs) > 0 {
		return n, fmt.Errorf("claimcheck: sweep: %d of %d deletes failed: %w", len(errs), len(old), errors.Join(errs...))
	}
	return n, nil
}

// Sweeper deletes expired blobs periodically, with an age it reads again
// from the topics' configs before every round (TopicRetention plus a
// grace), so a change of retention.ms takes effect on the next round. Run
// it next to the agent (one per store is enough; several are harmless):
//
//	s, err := claimcheck.NewSweeper(store, adm, []string{"docs", "docs.dlq"})
//	go s.Run(ctx)
//
// A round whose topics keep records forever deletes nothing; a round that
// fails (a topic missing, the broker or the store unreachable) deletes
// nothing it could not date and is reported; the next round tries again.
type Sweeper struct {
	store    BlobStore
	adm      *kadm.Client
	topics   []string
	grace    time.Duration
	interval time.Duration
	maxAge   time.Duration
	hook     func(SweepReport)
	log      *slog.Logger
}

// SweepOption configures a Sweeper.
type SweepOption func(*Sweeper)

// WithGrace adds d to the topics' retention, overriding the default
// DefaultGrace (1h). It does not apply to WithMaxAge.
func WithGrace(d time.Duration) SweepOption { return func(s *Sweeper) { s.grace = d } }

// WithSweepInterval runs a round every d, overriding the default
// DefaultSweepInterval (1h).
func WithSweepInterval(d time.Duration) SweepOption { return func(s *Sweeper) { s.interval = d } }

// WithMaxAge sweeps blobs older than d, as given, instead of reading the
// topics' retention (the default); the topics and the admin client are
// then not used and may be empty.
func WithMaxAge(d time.Duration) SweepOption { return func(s *Sweeper) { s.maxAge = d } }

// WithSweepHook calls fn with the report of every round (for metrics and
// alerts), overriding the default of none. fn runs on Run's goroutine.
func WithSweepHook(fn func(SweepReport)) SweepOption { return func(s *Sweeper) { s.hook = fn } }

// WithSweepLogger logs every round (deleted blobs at Info, failures at
// Warn), overriding the default of discarding.
func WithSweepLogger(l *slog.Logger) SweepOption { return func(s *Sweeper) { s.log = l } }

// SweepReport is what one round did.
type SweepReport struct {
	// Retention is the topics' retention as read this round; zero with
	// WithMaxAge or when reading it failed.
	Retention Retention
	// MaxAge is the age swept with (retention plus grace, or the
	// WithMaxAge value); zero when nothing was swept.
	MaxAge time.Duration
	// Deleted is how many blobs the round deleted.
	Deleted int
	// Err is why the round failed, or some deletes did.
	Err error
}

// NewSweeper returns a Sweeper of store for the blobs referred to by
// records of topics (list the retry and dead-letter topics too), reading
// their configs through adm, which the caller keeps and closes.
func NewSweeper(store BlobStore, adm *kadm.Client, topics []string, opts ...SweepOption) (*Sweeper, error) {
	s := &Sweeper{store: store, adm: adm, topics: topics, grace: DefaultGrace,
		interval: DefaultSweepInterval, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(s)
	}
	switch {
	case store == nil:
		return nil, errors.New("claimcheck: sweeper: no blob store")
	case s.maxAge < 0:
		return nil, fmt.Errorf("claimcheck: sweeper: maximum age %v must be positive", s.maxAge)
	case s.maxAge == 0 && len(topics) == 0:
		return nil, errors.New("claimcheck: sweeper: name the topics whose records refer to the store, or give WithMaxAge")
	case s.maxAge == 0 && adm == nil:
		return nil, errors.New("claimcheck: sweeper: reading the topics' retention needs an admin client (or give WithMaxAge)")
	case s.grace < 0:
		return nil, fmt.Errorf("claimcheck: sweeper: grace %v is negative", s.grace)
	case s.interval <= 0:
		return nil, fmt.Errorf("claimcheck: sweeper: interval %v must be positive", s.interval)
	}
	return s, nil
}

// Age returns the age this round would sweep with: the WithMaxAge value,
// or the topics' retention plus the grace. With r.Forever set nothing may
// be swept and age is zero.
func (s *Sweeper) Age(ctx context.Context) (age time.Duration, r Retention, err error) {
	if s.maxAge > 0 {
		return s.maxAge, Retention{}, nil
	}
	if r, err = TopicRetention(ctx, s.adm, s.topics...); err != nil || r.Forever {
		return 0, r, err
	}
	return r.Age + s.grace, r, nil
}

// SweepOnce runs one round: it reads the age and deletes the blobs older
// than that.
func (s *Sweeper) SweepOnce(ctx context.Context) SweepReport {
	age, r, err := s.Age(ctx)
	rep := SweepReport{Retention: r, Err: err}
	if err != nil || r.Forever {
		return rep
	}
	rep.MaxAge = age
	rep.Deleted, rep.Err = Sweep(ctx, s.store, age, time.Now())
	return rep
}

// Run sweeps at once and then every interval until ctx is done, and then
// returns nil. Failed rounds are reported (WithSweepHook,
// WithSweepLogger), never returned: the next round tries again.
func (s *Sweeper) Run(ctx context.Context) error {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		rep := s.SweepOnce(ctx)
		if ctx.Err() != nil {
			return nil // the round was cut short: not worth reporting
		}
		s.report(rep)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (s *Sweeper) report(rep SweepReport) {
	switch {
	case rep.Err != nil:
		s.log.Warn("claimcheck: sweep failed", "err", rep.Err, "deleted", rep.Deleted)
	case rep.Retention.Forever:
		s.log.Info("claimcheck: nothing swept: " + rep.Retention.String())
	default:
		s.log.Info("claimcheck: swept", "deleted", rep.Deleted, "max_age", rep.MaxAge)
	}
	if s.hook != nil {
		s.hook(rep)
	}
}
