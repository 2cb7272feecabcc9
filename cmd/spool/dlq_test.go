package main

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/agent"
)

// TestDLQCommands: list finds the dead-letter topic, redrive is a dry run
// until --execute, sends the selection back to its original topic, skips
// it the second time, and exits 3 naming the failures for a target that
// does not exist.
func TestDLQCommands(t *testing.T) {
	eachCluster(t, func(t *testing.T, addr string) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		adm := kadm.NewClient(cl)
		if _, err := adm.CreateTopics(ctx, 2, 1, nil, "bills", "bills.dlq"); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		var recs []*kgo.Record
		for i := range 12 {
			src := &kgo.Record{Topic: "bills", Partition: int32(i % 2), Offset: int64(i), Key: []byte("k" + strconv.Itoa(i%3)), Value: []byte("v" + strconv.Itoa(i))}
			reason := []string{agent.ReasonDeadLetter, agent.ReasonRetriesExhausted}[i%2]
			recs = append(recs, agent.DeadLetterRecord("bills.dlq", src, "billing", reason, 2, errors.New("no such customer"), now))
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}

		out := mustRun(t, addr, "", "dlq", "list")
		if f := fields(out, "bills.dlq"); len(f) < 4 || f[1] != "name" || f[3] != "12" {
			t.Fatalf("dlq list: %q", out)
		}
		out = mustRun(t, addr, "", "dlq", "redrive", "bills.dlq", "--reason", agent.ReasonDeadLetter)
		wantContains(t, "dry run", out, "6 of 6 matching records to redrive (12 read from bills.dlq)", "Dry run: nothing sent")
		if f := fields(out, "bills"); len(f) < 2 || f[1] != "6" {
			t.Fatalf("dry run targets: %q", out)
		}
		out = mustRun(t, addr, "", "dlq", "redrive", "bills.dlq", "--reason", agent.ReasonDeadLetter, "--rate", "0", "--execute")
		wantContains(t, "redrive", out, "done: redriven 6, failed 0, skipped 0")
		if ends, err := adm.ListEndOffsets(ctx, "bills"); err != nil || sumEnds(ends) != 6 {
			t.Fatalf("bills has %d records, want 6 (%v)", sumEnds(ends), err)
		}
		out = mustRun(t, addr, "", "dlq", "redrive", "bills.dlq", "--reason", agent.ReasonDeadLetter)
		wantContains(t, "second dry run", out, "0 of 6 matching records to redrive", "6 already redriven, skipped")

		r := run(t, addr, "", "dlq", "redrive", "bills.dlq", "--reason", agent.ReasonRetriesExhausted, "--to-topic", "bills-gone", "--execute")
		if exitCode(r.err) != 3 || !strings.Contains(r.err.Error(), "6 records failed") || !strings.Contains(r.out, "does not exist") {
			t.Fatalf("redrive to a missing topic: exit %d %v\n%s", exitCode(r.err), r.err, r.out)
		}
		if ends, _ := adm.ListEndOffsets(ctx, "bills.dlq"); sumEnds(ends) != 12 {
			t.Fatalf("bills.dlq has %d records, want 12", sumEnds(ends))
		}
		mustFail(t, addr, "", []string{"dlq", "redrive", "bills.dlq", "--from", "yesterday"}, "bad --from")
		mustFail(t, addr, "", []string{"dlq", "redrive", "no-such.dlq"}, "no-such.dlq")
	})
}

func sumEnds(ends kadm.ListedOffsets) int64 {
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}
