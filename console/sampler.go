package console

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// sample is the cluster's counters at one instant: the charts' rates are
// differences between samples, so they need nothing from the broker but
// the Kafka protocol.
type sample struct {
	At             time.Time
	TopicEnds      map[string]int64 // sum of the end offsets of each topic's partitions
	GroupCommitted map[string]int64 // sum of each group's committed offsets
	GroupLag       map[string]int64 // each group's total lag
	// GroupTimeLag is the lag in time of the groups whose page is open
	// (sampler.watch): reading record timestamps for every group every
	// sample would cost a fetch per moving partition.
	GroupTimeLag map[string]time.Duration
	Metrics      *metricsSample // the scrape of Config.Metrics, nil without it
}

// sampler keeps the samples of the last Config.History, oldest first. Its
// maps are never changed once stored, so readers share them.
type sampler struct {
	interval time.Duration
	max      int
	scrape   func(context.Context) *metricsSample // Config.Metrics, nil without it
	// lagTimes reads the timestamps the watched groups' lag in time
	// needs (Console.lagTimes).
	lagTimes func(context.Context, ...kadm.DescribedGroupLag) map[tpOffset]time.Time

	mu      sync.Mutex
	ring    []sample
	watched map[string]int // group -> open pages
	wake    chan struct{}
}

// watch adds group's lag in time to the samples until the returned
// function is called.
func (s *sampler) watch(group string) (unwatch func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watched == nil {
		s.watched = map[string]int{}
	}
	s.watched[group]++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.watched[group]--; s.watched[group] <= 0 {
			delete(s.watched, group)
		}
	}
}

func (s *sampler) watchedGroups() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]bool, len(s.watched))
	for g := range s.watched {
		out[g] = true
	}
	return out
}

func newSampler(interval, history time.Duration) *sampler {
	n := max(int(history/interval), 2)
	return &sampler{interval: interval, max: n, wake: make(chan struct{}, 1)}
}

// run samples every interval (and when poked) until ctx is done.
func (s *sampler) run(ctx context.Context, adm *kadm.Client, timeout time.Duration) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		sctx, cancel := context.WithTimeout(ctx, timeout)
		if smp, ok := s.take(sctx, adm); ok {
			if s.scrape != nil {
				smp.Metrics = s.scrape(sctx)
			}
			s.add(smp)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// poke asks for a sample now (after an action that changes offsets).
func (s *sampler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *sampler) add(smp sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ring = append(s.ring, smp)
	if len(s.ring) > s.max {
		s.ring = append(s.ring[:0], s.ring[len(s.ring)-s.max:]...)
	}
}

// samples returns the samples held, oldest first.
func (s *sampler) samples() []sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sample(nil), s.ring...)
}

// take reads every topic's end offsets, every group's commits and lag,
// and the watched groups' lag in time. A failed read yields no sample
// (the chart shows a gap).
func (s *sampler) take(ctx context.Context, adm *kadm.Client) (sample, bool) {
	ends, err := adm.ListEndOffsets(ctx)
	if err != nil {
		return sample{}, false
	}
	smp := sample{At: time.Now(), TopicEnds: map[string]int64{}, GroupCommitted: map[string]int64{}, GroupLag: map[string]int64{},
		GroupTimeLag: map[string]time.Duration{}}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			smp.TopicEnds[o.Topic] += o.Offset
		}
	})
	lags, err := adm.Lag(ctx)
	if err == nil {
		for g, l := range lags {
			if l.Error() != nil {
				continue
			}
			var committed int64
			for _, ml := range l.Lag.Sorted() {
				if ml.Commit.At > 0 {
					committed += ml.Commit.At
				}
			}
			smp.GroupCommitted[g] = committed
			smp.GroupLag[g] = l.Lag.Total()
		}
		s.takeTimeLags(ctx, lags, &smp)
	}
	return smp, true
}

// Point is one value of a chart's series.
type Point struct {
	T time.Time
	V float64
}

// Series is one line of a chart.
type Series struct {
	Name   string
	Points []Point
}

// rateSeries is the per-second rate of a counter between successive
// samples; get reports the counter and whether the sample has it.
func rateSeries(name string, smps []sample, get func(sample) (int64, bool)) Series {
	s := Series{Name: name}
	for i := 1; i < len(smps); i++ {
		a, okA := get(smps[i-1])
		b, okB := get(smps[i])
		dt := smps[i].At.Sub(smps[i-1].At).Seconds()
		if !okA || !okB || dt <= 0 {
			continue
		}
		s.Points = append(s.Points, Point{T: smps[i].At, V: max(float64(b-a)/dt, 0)})
	}
	return s
}

// valueSeries is a gauge across the samples.
func valueSeries(name string, smps []sample, get func(sample) (int64, bool)) Series {
	s := Series{Name: name}
	for _, smp := range smps {
		if v, ok := get(smp); ok {
			s.Points = append(s.Points, Point{T: smp.At, V: float64(v)})
		}
	}
	return s
}

// lastRate is the latest per-second rate of a series (0 without two
// samples).
func lastRate(s Series) float64 {
	if len(s.Points) == 0 {
		return 0
	}
	return s.Points[len(s.Points)-1].V
}

// takeTimeLags adds the watched groups' lag in time to smp.
func (s *sampler) takeTimeLags(ctx context.Context, lags kadm.DescribedGroupLags, smp *sample) {
	watched := s.watchedGroups()
	if len(watched) == 0 || s.lagTimes == nil {
		return
	}
	var ls []kadm.DescribedGroupLag
	for g := range watched {
		if l, ok := lags[g]; ok && l.Error() == nil {
			ls = append(ls, l)
		}
	}
	times := s.lagTimes(ctx, ls...)
	now := time.Now()
	for _, l := range ls {
		if d := groupLagTime(now, l, times); d != lagUnknown {
			smp.GroupTimeLag[l.Group] = d
		}
	}
}
