package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/console"
	"github.com/spoolmq/spool/spooltest"
)

// BenchmarkTopicsPage renders /ui/topics with 1,000 topics of 2
// partitions on a Spool broker. "kafka requests" is the baseline: the
// requests the page makes, alone (Metadata, ListOffsets for the start and
// the end, DescribeLogDirs, DescribeConfigs), each once whatever the
// number of topics.
//
//	go test ./console -run '^$' -bench BenchmarkTopicsPage -benchtime 20x
func BenchmarkTopicsPage(b *testing.B) {
	const topics = 1000
	addrs := []string{spooltest.Start(b).Addr()}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	names := make([]string, topics)
	for i := range names {
		names[i] = fmt.Sprintf("bench.topic-%04d", i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for i := 0; i < topics; i += 100 {
		resp, err := adm.CreateTopics(ctx, 2, 1, nil, names[i:i+100]...)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			b.Fatalf("create topics: %v", err)
		}
	}
	c, _ := startConsole(b, addrs, console.Config{SampleInterval: time.Second})

	b.Run("kafka requests", func(b *testing.B) {
		for b.Loop() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			req := kmsg.NewPtrMetadataRequest()
			md, err := req.RequestWith(ctx, cl)
			if err != nil || len(md.Topics) < topics {
				b.Fatalf("metadata: %v", err)
			}
			set := kadm.TopicsSet{}
			for _, n := range names {
				set.Add(n, 0, 1)
			}
			_, err1 := adm.ListStartOffsets(ctx, names...)
			_, err2 := adm.ListEndOffsets(ctx, names...)
			_, err3 := adm.DescribeAllLogDirs(ctx, set)
			_, err4 := adm.DescribeTopicConfigs(ctx, names...)
			cancel()
			for _, err := range []error{err1, err2, err3, err4} {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("page", func(b *testing.B) {
		var body string
		for b.Loop() {
			rec := httptest.NewRecorder()
			c.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ui/topics?sort=size&dir=desc", nil))
			if rec.Code != http.StatusOK {
				b.Fatalf("page: %d %s", rec.Code, rec.Body)
			}
			body = rec.Body.String()
		}
		b.ReportMetric(float64(len(body)), "bytes/page")
		if got := strings.Count(body, `<tr data-topic="`); got != topics {
			b.Fatalf("the page lists %d topics, want %d", got, topics)
		}
	})
}
