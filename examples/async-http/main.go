// Command async-http shows the gateway's asynchronous request/reply end to
// end: an order service on the agent answers order.place commands with
// agent.Reply, a client submits an order (202 + Location) and polls with
// Prefer: wait, and a browser page at --http submits one and gets the result
// over Server-Sent Events.
//
//	go run ./cmd/spool serve &
//	go run ./cmd/spool topic create orders
//	go run ./examples/async-http            # then open http://127.0.0.1:8090/
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "Kafka seed brokers")
	gw := flag.String("gateway", "http://127.0.0.1:8080", "the gateway (spool serve's HTTP listener)")
	addr := flag.String("http", "127.0.0.1:8090", "where to serve the browser page")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	go func() {
		if err := Service(ctx, strings.Split(*brokers, ","), "orders"); err != nil {
			log.Fatalf("order service: %v", err)
		}
	}()
	u, err := url.Parse(*gw)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Addr: *addr, Handler: Handler(u), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != http.ErrServerClosed {
			log.Fatal(err)
		}
	}()
	fmt.Printf("order service running; page on http://%s/\n", *addr)

	st, err := PlaceOrder(ctx, *gw, Order{Item: "espresso beans", Quantity: 2}, fmt.Sprint("example-", time.Now().UnixNano()))
	if err != nil {
		log.Fatalf("place order: %v", err)
	}
	fmt.Printf("request %s %s: %s\n", st.ID, st.State, st.Result)
	<-ctx.Done()
	srv.Shutdown(context.Background())
}
