package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolmq/spool/console"
	"github.com/spoolmq/spool/internal/kafkatest"
)

// BenchmarkGroupsPage renders /ui/groups with 1,000 consumer groups on a
// Spool broker (each with committed offsets on the 4 partitions of one of
// 20 topics); "kadm.Lag" is the baseline: the Kafka requests alone, which
// the page makes once. The sampler runs in the background, as in
// production. "page" reads the lag in time from the cache of record
// timestamps (a page reloaded within a minute); "page/cold-timestamps"
// reads all of them each time.
//
//	go test ./console -run '^$' -bench BenchmarkGroupsPage -benchtime 20x
func BenchmarkGroupsPage(b *testing.B) {
	var spool kafkatest.Cluster
	for _, c := range kafkatest.Clusters() {
		if c.Name == "spool" {
			spool = c
		}
	}
	addrs := spool.Start(b)
	const groups, topics, parts = 1000, 20, 4
	for i := range topics {
		kafkatest.CreateTopic(b, addrs, fmt.Sprintf("bench-%02d", i), parts)
		grpProduce(b, addrs, fmt.Sprintf("bench-%02d", i), 10, 0, 1, 2, 3)
	}
	adm := grpAdmin(b, addrs)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range groups {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			grpCommit(b, adm, fmt.Sprintf("group-%04d", i), fmt.Sprintf("bench-%02d", i%topics),
				map[int32]int64{0: int64(i % 10), 1: 3, 2: 5, 3: 10})
		}()
	}
	wg.Wait()
	// The sampler runs as in production (every second here, 5s by
	// default); the page is measured once it draws every group's trend.
	c, _ := startConsole(b, addrs, console.Config{SampleInterval: time.Second, History: 40 * time.Second})
	kafkatest.Eventually(b, 30*time.Second, "two samples", func() bool {
		return strings.Count(httptestGet(c.Handler(), "/ui/groups").Body.String(), `<svg class="spark"`) == groups
	})

	b.Run("kadm.Lag", func(b *testing.B) {
		for b.Loop() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			lags, err := adm.Lag(ctx)
			cancel()
			if err != nil || len(lags) != groups {
				b.Fatalf("lag: %d groups, %v", len(lags), err)
			}
		}
	})
	for _, cold := range []bool{false, true} {
		name := "page"
		if cold {
			name = "page/cold-timestamps"
		}
		b.Run(name, func(b *testing.B) { benchGroupsPage(b, c, groups, cold) })
	}
}

// benchGroupsPage renders the list by lag; cold empties the cache of
// record timestamps first, so each render reads every lagging
// partition's oldest unconsumed record (the first load of the page).
func benchGroupsPage(b *testing.B, c *console.Console, groups int, cold bool) {
	var last string
	for b.Loop() {
		if cold {
			c.ForgetRecordTimes()
		}
		rec := httptest.NewRecorder()
		c.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ui/groups?sort=lag&dir=desc", nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("page: %d %s", rec.Code, rec.Body)
		}
		last = rec.Body.String()
	}
	b.ReportMetric(float64(len(last)), "bytes/page")
	if got := len(grpRows(last)); got != groups {
		b.Fatalf("the page lists %d groups, want %d", got, groups)
	}
	// Every group but the caught-up ones has a lag in time read (900 of
	// them lag on partition 0 or 1 or 2), none is unknown.
	if n, unknown := strings.Count(last, `<td class="n timelag"><span data-ms="`), strings.Count(last, `data-ms="-1"`); n != groups || unknown != 0 {
		b.Fatalf("the page has %d lags in time, %d of them unknown, want %d known", n, unknown, groups)
	}
}
