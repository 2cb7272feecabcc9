package lookback_test

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/lookback"
)

// TestRecordOverOneMiB: a record larger than the brokers' default 1 MiB
// limit (its topic's max.message.bytes raised to 4 MiB) is archived whole,
// without stopping the archiver, and found by a payload search and by its
// position; the events after it are archived too.
func TestRecordOverOneMiB(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		limit := fmt.Sprint(4 << 20)
		kafkatest.CreateTopicWithConfigs(t, addrs, "huge", 1, map[string]*string{"max.message.bytes": &limit})
		svc, st := startService(t, addrs, nil)
		raw := make([]byte, 1200<<10) // random, so the batch stays over 1 MiB compressed
		rand.Read(raw)
		big := "needle-" + base64.StdEncoding.EncodeToString(raw) // about 1.6 MiB
		produce(t, addrs, &kgo.Record{Topic: "huge", Key: []byte("big"), Value: []byte(big)})
		produce(t, addrs, &kgo.Record{Topic: "huge", Key: []byte("after"), Value: []byte("small")})
		waitEvents(t, st, 2)

		srv := httptest.NewServer(svc.Handler())
		defer srv.Close()
		var page lookback.SearchResponse
		getJSON(t, srv.URL+"/api/lookback/events?q=needle-", http.StatusOK, &page)
		if len(page.Events) != 1 || string(page.Events[0].Key) != "big" || string(page.Events[0].Value) != big {
			t.Fatalf("payload search for the large record: %d events", len(page.Events))
		}
		e := page.Events[0]
		var shown lookback.Event
		getJSON(t, fmt.Sprintf("%s/api/lookback/events/huge/%d/%d", srv.URL, e.Partition, e.Offset), http.StatusOK, &shown)
		if string(shown.Value) != big {
			t.Fatalf("show: %d bytes, want the %d of the record", len(shown.Value), len(big))
		}
		getJSON(t, srv.URL+"/api/lookback/events?key=after", http.StatusOK, &page)
		if len(page.Events) != 1 || string(page.Events[0].Value) != "small" {
			t.Fatalf("the record after the large one: %+v", page.Events)
		}
	})
}
