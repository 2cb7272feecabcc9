package claimcheck_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/spoolmq/spool/claimcheck"
	"github.com/spoolmq/spool/event"
)

func Example() {
	dir, err := os.MkdirTemp("", "claims")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := claimcheck.NewDir(dir)
	if err != nil {
		log.Fatal(err)
	}
	cc := claimcheck.New(store) // payloads over 900 KiB go to the store
	ctx := context.Background()

	ev, _ := event.New("scan.uploaded", event.Raw, make([]byte, 2<<20))
	ev.Source = "/scanner"
	offloaded, err := cc.Offload(ctx, ev) // what producer.WithClaimCheck does before publishing
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("offloaded:", offloaded, "inline bytes:", len(ev.Data), "size header:", string(ev.Header(claimcheck.HeaderSize)))

	resolved, err := cc.Resolve(ctx, ev) // what agent.WithClaimCheck does before the handler
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("resolved:", resolved, "bytes:", len(ev.Data), "reference left:", ev.Header(claimcheck.HeaderRef) != nil)
	// Output:
	// offloaded: true inline bytes: 0 size header: 2097152
	// resolved: true bytes: 2097152 reference left: false
}
