package claimcheck_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/claimcheck"
	"github.com/spoolmq/spool/claimcheck/blobstoretest"
	"github.com/spoolmq/spool/internal/kafkatest"
)

func newAdmin(t *testing.T, addrs []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func ptr(s string) *string { return &s }

// retentionTopic creates topic with retention.ms and segment.ms (in ms).
func retentionTopic(t *testing.T, addrs []string, topic, retentionMs, segmentMs string) {
	t.Helper()
	kafkatest.CreateTopicWithConfigs(t, addrs, topic, 1, map[string]*string{
		"retention.ms": ptr(retentionMs), "segment.ms": ptr(segmentMs)})
}

// TestTopicRetention: the age is the longest retention.ms + segment.ms of
// the topics; retention.ms -1 means forever; a missing topic is an error
// naming it.
func TestTopicRetention(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		ctx := t.Context()
		retentionTopic(t, addrs, "short", "3600000", "600000") // 1h + 10m
		retentionTopic(t, addrs, "long", "7200000", "60000")   // 2h + 1m
		retentionTopic(t, addrs, "forever", "-1", "60000")
		adm := newAdmin(t, addrs)

		for _, tc := range []struct {
			topics []string
			want   claimcheck.Retention
		}{
			{[]string{"short"}, claimcheck.Retention{Age: 70 * time.Minute, Topic: "short"}},
			{[]string{"short", "long"}, claimcheck.Retention{Age: 121 * time.Minute, Topic: "long"}},
			{[]string{"long", "short"}, claimcheck.Retention{Age: 121 * time.Minute, Topic: "long"}},
			{[]string{"short", "forever", "long"}, claimcheck.Retention{Forever: true, Topic: "forever"}},
		} {
			got, err := claimcheck.TopicRetention(ctx, adm, tc.topics...)
			if err != nil || got != tc.want {
				t.Errorf("TopicRetention(%v) = %+v, %v; want %+v", tc.topics, got, err, tc.want)
			}
		}
		_, err := claimcheck.TopicRetention(ctx, adm, "short", "nope")
		if err == nil || !strings.Contains(err.Error(), `"nope" does not exist`) || !errors.Is(err, kerr.UnknownTopicOrPartition) {
			t.Errorf("unknown topic: %v", err)
		}
		if _, err := claimcheck.TopicRetention(ctx, adm); err == nil {
			t.Error("no topics: no error")
		}
	})
}

// TestSweeperRetention: a round deletes only the blobs older than
// retention.ms + segment.ms + grace; a topic with retention.ms -1 keeps
// every blob; an unknown topic fails the round and deletes nothing.
func TestSweeperRetention(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		ctx := t.Context()
		retentionTopic(t, addrs, "docs", "3600000", "600000") // readable up to 1h10m, swept after 2h10m
		retentionTopic(t, addrs, "keep", "-1", "600000")
		adm := newAdmin(t, addrs)
		store, _ := blobstoretest.AgedDir(t, map[string]time.Duration{
			"ancient": 1000 * time.Hour,
			"old":     3 * time.Hour,
			"edge":    2*time.Hour + 5*time.Minute, // past retention + grace, not past + segment.ms
			"fresh":   time.Minute,
		})

		for _, topics := range [][]string{{"keep"}, {"docs", "keep"}} {
			s, err := claimcheck.NewSweeper(store, adm, topics)
			if err != nil {
				t.Fatal(err)
			}
			rep := s.SweepOnce(ctx)
			if rep.Err != nil || !rep.Retention.Forever || rep.Deleted != 0 || rep.MaxAge != 0 {
				t.Errorf("topics %v: %+v, want forever and nothing deleted", topics, rep)
			}
		}
		s, err := claimcheck.NewSweeper(store, adm, []string{"docs", "nope"})
		if err != nil {
			t.Fatal(err)
		}
		if rep := s.SweepOnce(ctx); rep.Err == nil || !strings.Contains(rep.Err.Error(), "nope") || rep.Deleted != 0 {
			t.Errorf("unknown topic: %+v", rep)
		}
		if got := blobstoretest.Names(t, store); len(got) != 4 {
			t.Fatalf("blobs deleted while the retention said not to: %v left", got)
		}

		s, err = claimcheck.NewSweeper(store, adm, []string{"docs"})
		if err != nil {
			t.Fatal(err)
		}
		rep := s.SweepOnce(ctx)
		if rep.Err != nil || rep.Deleted != 2 || rep.MaxAge != 2*time.Hour+10*time.Minute || rep.Retention.Topic != "docs" {
			t.Errorf("sweep: %+v, want 2 deleted with max age 2h10m", rep)
		}
		if got := blobstoretest.Names(t, store); !slices.Equal(got, []string{"edge", "fresh"}) {
			t.Errorf("left %v, want [edge fresh]", got)
		}

		s, err = claimcheck.NewSweeper(store, adm, []string{"docs"}, claimcheck.WithGrace(0))
		if err != nil {
			t.Fatal(err)
		}
		if rep := s.SweepOnce(ctx); rep.Err != nil || rep.Deleted != 1 || rep.MaxAge != 70*time.Minute {
			t.Errorf("no grace: %+v, want edge deleted with max age 1h10m", rep)
		}
	})
}

// TestSweeperMaxAge: WithMaxAge sweeps with the age given, no broker
// needed.
func TestSweeperMaxAge(t *testing.T) {
	store, _ := blobstoretest.AgedDir(t, map[string]time.Duration{"old": 2 * time.Hour, "fresh": time.Minute})
	s, err := claimcheck.NewSweeper(store, nil, nil, claimcheck.WithMaxAge(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if rep := s.SweepOnce(t.Context()); rep.Err != nil || rep.Deleted != 1 || rep.MaxAge != time.Hour {
		t.Errorf("%+v", rep)
	}
	if got := blobstoretest.Names(t, store); !slices.Equal(got, []string{"fresh"}) {
		t.Errorf("left %v", got)
	}
}

// TestNewSweeperErrors: what a Sweeper cannot work with is refused.
func TestNewSweeperErrors(t *testing.T) {
	store, _ := blobstoretest.AgedDir(t, nil)
	adm := kadm.NewClient(nil)
	for name, tc := range map[string]struct {
		store  claimcheck.BlobStore
		adm    *kadm.Client
		topics []string
		opts   []claimcheck.SweepOption
		want   string
	}{
		"no store":       {nil, adm, []string{"t"}, nil, "no blob store"},
		"no topics":      {store, adm, nil, nil, "name the topics"},
		"no admin":       {store, nil, []string{"t"}, nil, "admin client"},
		"negative age":   {store, nil, nil, []claimcheck.SweepOption{claimcheck.WithMaxAge(-time.Hour)}, "maximum age"},
		"negative grace": {store, adm, []string{"t"}, []claimcheck.SweepOption{claimcheck.WithGrace(-1)}, "grace"},
		"zero interval":  {store, adm, []string{"t"}, []claimcheck.SweepOption{claimcheck.WithSweepInterval(0)}, "interval"},
	} {
		if _, err := claimcheck.NewSweeper(tc.store, tc.adm, tc.topics, tc.opts...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error mentioning %q", name, err, tc.want)
		}
	}
	if _, err := claimcheck.Sweep(t.Context(), store, 0, time.Now()); err == nil {
		t.Error("Sweep with max age 0: no error")
	}
}

// TestSweeperRun: Run sweeps every interval with the retention read again
// each round (retention.ms changed from -1 to 1h takes effect), reports
// each round, and returns when its context is cancelled.
func TestSweeperRun(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		retentionTopic(t, addrs, "live", "-1", "60000")
		adm := newAdmin(t, addrs)
		store, _ := blobstoretest.AgedDir(t, map[string]time.Duration{"old": 100 * time.Hour, "fresh": time.Minute})
		reports := make(chan claimcheck.SweepReport, 1000)
		s, err := claimcheck.NewSweeper(store, adm, []string{"live"},
			claimcheck.WithSweepInterval(10*time.Millisecond),
			claimcheck.WithSweepHook(func(r claimcheck.SweepReport) {
				select {
				case reports <- r:
				default:
				}
			}))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		ran := make(chan error, 1)
		go func() { ran <- s.Run(ctx) }()

		next := func(what string) claimcheck.SweepReport {
			t.Helper()
			select {
			case r := <-reports:
				return r
			case <-time.After(30 * time.Second):
				t.Fatalf("no sweep report while waiting for %s", what)
				return claimcheck.SweepReport{}
			}
		}
		for i := 0; i < 2; i++ { // two rounds of "forever"
			if r := next("forever"); r.Err != nil || !r.Retention.Forever || r.Deleted != 0 {
				t.Fatalf("round %d: %+v, want forever", i, r)
			}
		}
		if got := blobstoretest.Names(t, store); len(got) != 2 {
			t.Fatalf("deleted under infinite retention: %v left", got)
		}
		_, err = adm.AlterTopicConfigs(t.Context(), []kadm.AlterConfig{{Name: "retention.ms", Value: ptr("3600000")}}, "live")
		if err != nil {
			t.Fatal(err)
		}
		deleted := 0
		for deleted == 0 {
			r := next("the old blob deleted")
			if r.Err != nil {
				t.Fatalf("round: %v", r.Err)
			}
			deleted += r.Deleted
		}
		if got := blobstoretest.Names(t, store); deleted != 1 || !slices.Equal(got, []string{"fresh"}) {
			t.Fatalf("deleted %d, left %v; want old deleted", deleted, got)
		}
		cancel()
		select {
		case err := <-ran:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after its context was cancelled")
		}
	})
}
