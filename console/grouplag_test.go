package console_test

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/console"
	"github.com/spoolmq/spool/internal/kafkatest"
)

// lagProduceAt writes one record a timestamp to partition p of topic, in
// order (offsets 0, 1, ...).
func lagProduceAt(t *testing.T, addrs []string, topic string, p int32, value []byte, ts ...time.Time) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var rs []*kgo.Record
	for _, at := range ts {
		rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Value: value, Timestamp: at})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s/%d: %v", topic, p, err)
	}
}

func repeatTime(at time.Time, n int) []time.Time {
	ts := make([]time.Time, n)
	for i := range ts {
		ts[i] = at
	}
	return ts
}

// lagMillis returns the data-ms of the lag in time cell of the row that
// starts with rowAttr (data-group="g", data-tp="t/0").
func lagMillis(t *testing.T, body, rowAttr string) int64 {
	t.Helper()
	m := regexp.MustCompile(`(?s)` + regexp.QuoteMeta(rowAttr) + `[^<]*>.*?<td class="n timelag"><span[^>]*data-ms="(-?\d+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no lag in time in the row %s:\n%s", rowAttr, body)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// wantAge fails t unless got (ms) is the age of a record stamped at,
// seen at some instant between before and after.
func wantAge(t *testing.T, what string, got int64, at, before, after time.Time) {
	t.Helper()
	lo, hi := before.Sub(at).Milliseconds()-1, after.Sub(at).Milliseconds()+1
	if got < lo || got > hi {
		t.Errorf("%s: lag in time %d ms, want the age of its oldest unconsumed record, %d-%d ms", what, got, lo, hi)
	}
}

// TestGroupLagInTime: a lagging group's lag in time is the age of its
// oldest unconsumed record, per partition and for the group (the oldest
// of its partitions'); a caught-up group's is 0; a partition without a
// commit counts from the log start. The list sorts by it.
func TestGroupLagInTime(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "glt", 2)
		old := time.Now().Add(-2 * time.Hour).Truncate(time.Millisecond)
		halfMin := time.Now().Add(-30 * time.Second).Truncate(time.Millisecond)
		minute := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
		// Partition 0: offsets 0-4 two hours old, 5-9 half a minute old.
		// Partition 1: 5 records a minute old, of 100 KiB each, so their
		// batches are bigger than a shared fetch asks of a partition.
		lagProduceAt(t, addrs, "glt", 0, []byte("v"), repeatTime(old, 5)...)
		lagProduceAt(t, addrs, "glt", 0, []byte("v"), repeatTime(halfMin, 5)...)
		lagProduceAt(t, addrs, "glt", 1, bytes.Repeat([]byte("x"), 100<<10), repeatTime(minute, 5)...)
		adm := grpAdmin(t, addrs)
		grpCommit(t, adm, "glt-behind", "glt", map[int32]int64{0: 3, 1: 5})     // p0 at a 2h-old record, p1 caught up
		grpCommit(t, adm, "glt-recent", "glt", map[int32]int64{0: 5, 1: 2})     // p0 30s, p1 1m
		grpCommit(t, adm, "glt-nocommit", "glt", map[int32]int64{0: 10})        // p1 from its start: 1m
		grpCommit(t, adm, "glt-caught-up", "glt", map[int32]int64{0: 10, 1: 5}) // nothing to consume
		_, base := startConsole(t, addrs, console.Config{})

		before := time.Now()
		status, body := get(t, base+"/ui/groups/glt-behind")
		after := time.Now()
		if status != http.StatusOK {
			t.Fatalf("GET group: %d %s", status, body)
		}
		wantAge(t, "glt-behind glt/0", lagMillis(t, body, `data-tp="glt/0"`), old, before, after)
		if got := lagMillis(t, body, `data-tp="glt/1"`); got != 0 {
			t.Errorf("glt-behind glt/1 is caught up: lag in time %d ms, want 0", got)
		}
		if !strings.Contains(body, `id="time-lag"><span data-ms="`) || !strings.Contains(body, `>2h 0m</span>`) {
			t.Errorf("the group's lag in time (2h 0m) is not shown:\n%s", body)
		}

		before = time.Now()
		_, body = get(t, base+"/ui/groups/glt-recent")
		after = time.Now()
		wantAge(t, "glt-recent glt/0", lagMillis(t, body, `data-tp="glt/0"`), halfMin, before, after)
		wantAge(t, "glt-recent glt/1", lagMillis(t, body, `data-tp="glt/1"`), minute, before, after)

		before = time.Now()
		status, body = get(t, base+"/ui/groups?sort=timelag&dir=desc")
		after = time.Now()
		if status != http.StatusOK {
			t.Fatalf("GET groups: %d %s", status, body)
		}
		if got := strings.Join(grpRows(body), ","); got != "glt-behind,glt-nocommit,glt-recent,glt-caught-up" {
			t.Errorf("by lag in time, descending: %s", got)
		}
		wantAge(t, "glt-behind", lagMillis(t, body, `data-group="glt-behind"`), old, before, after)
		wantAge(t, "glt-recent", lagMillis(t, body, `data-group="glt-recent"`), minute, before, after)
		wantAge(t, "glt-nocommit", lagMillis(t, body, `data-group="glt-nocommit"`), minute, before, after)
		if got := lagMillis(t, body, `data-group="glt-caught-up"`); got != 0 {
			t.Errorf("glt-caught-up: lag in time %d ms, want 0", got)
		}
		if !strings.Contains(body, `aria-sort="descending"><a href="/ui/groups?sort=timelag">Lag in time ▼`) {
			t.Errorf("the lag in time header is not marked sorted descending:\n%s", body)
		}
	})
}
