package claimcheck_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/spoolmq/spool/claimcheck"
)

// A Sweeper with a fixed age, for the example to run without a broker. In
// an application, give it the admin client and the topics instead, so it
// reads their retention every round, and run it next to the agent:
//
//	sw, err := claimcheck.NewSweeper(store, kadm.NewClient(cl), []string{"docs", "docs.dlq"},
//		claimcheck.WithSweepHook(func(r claimcheck.SweepReport) { /* metrics, alerts */ }))
//	go sw.Run(ctx)
func ExampleSweeper() {
	dir, err := os.MkdirTemp("", "claims")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := claimcheck.NewDir(dir)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	for _, name := range []string{"last-month", "today"} {
		if err := store.Put(ctx, name, []byte("payload")); err != nil {
			log.Fatal(err)
		}
	}
	old := time.Now().Add(-30 * 24 * time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "last-month"), old, old); err != nil {
		log.Fatal(err)
	}

	sw, err := claimcheck.NewSweeper(store, nil, nil, claimcheck.WithMaxAge(8*24*time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	rep := sw.SweepOnce(ctx)
	fmt.Println("deleted:", rep.Deleted, "error:", rep.Err)
	_, err = store.Get(ctx, "today")
	fmt.Println("today's blob kept:", err == nil)
	// Output:
	// deleted: 1 error: <nil>
	// today's blob kept: true
}
