package lookback_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/lookback"
)

// assignedTopics returns the topics assigned to the members of the
// archiver's group.
func assignedTopics(t *testing.T, addrs []string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gs, err := kadm.NewClient(cl).DescribeGroups(ctx, "spool-lookback")
	if err != nil {
		t.Fatalf("describe the archiver's group: %v", err)
	}
	var topics []string
	for _, m := range gs["spool-lookback"].Members {
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, tp := range a.Topics {
				topics = append(topics, tp.Topic)
			}
		}
	}
	slices.Sort(topics)
	return slices.Compact(topics)
}

// TestIncludePatterns: with Config.Include the archiver subscribes to the
// matching topics only, those that exist at the start and those created
// later; other topics are neither consumed nor archived.
func TestIncludePatterns(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "orders.eu", 1)
		kafkatest.CreateTopic(t, addrs, "billing", 1)
		svc, st := startService(t, addrs, func(c *lookback.Config) { c.Include = []string{`^orders\.`, `^audit$`} })
		produce(t, addrs, ceRec(t, "orders.eu", "k", "order.placed", "", nil), ceRec(t, "billing", "k", "invoice.sent", "", nil))
		waitEvents(t, st, 1)
		// Topics created after the start: the archiver picks up the
		// matching ones with the same metadata refresh that shows it the
		// others.
		kafkatest.CreateTopic(t, addrs, "orders.us", 1)
		kafkatest.CreateTopic(t, addrs, "audit", 1)
		kafkatest.CreateTopic(t, addrs, "billing.late", 1)
		kafkatest.CreateTopic(t, addrs, "audit.old", 1)
		produce(t, addrs, ceRec(t, "orders.us", "k", "order.placed", "", nil), ceRec(t, "audit", "k", "audited", "", nil),
			ceRec(t, "billing.late", "k", "invoice.sent", "", nil), ceRec(t, "audit.old", "k", "audited", "", nil))
		waitEvents(t, st, 3)
		want := []string{"audit", "orders.eu", "orders.us"}
		kafkatest.Eventually(t, 30*time.Second, "the group assigned every included topic", func() bool {
			got := assignedTopics(t, addrs)
			for _, topic := range got {
				if !slices.Contains(want, topic) {
					t.Fatalf("archiver consumes %v, want only the included topics %v", got, want)
				}
			}
			return slices.Equal(got, want)
		})
		srv := httptest.NewServer(svc.Handler())
		defer srv.Close()
		for _, topic := range []string{"billing", "billing.late", "audit.old"} {
			var page lookback.SearchResponse
			getJSON(t, srv.URL+"/api/lookback/events?topic="+topic, http.StatusOK, &page)
			if len(page.Events) != 0 {
				t.Fatalf("%s is not included but was archived", topic)
			}
		}
		if n := stats(t, st).Events; n != 3 {
			t.Fatalf("%d events archived, want the 3 of included topics", n)
		}
	})
}
