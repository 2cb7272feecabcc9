package event_test

import (
	"fmt"
	"time"

	"github.com/spoolmq/spool/event"
)

type OrderPlaced struct {
	Order  string `json:"order"`
	Amount int    `json:"amount"`
}

// An event travels as CloudEvents binary-mode headers; a consumer reads its
// type without decoding the payload, and decodes it into a struct when it
// needs to.
func Example() {
	ev, _ := event.New("order.placed", event.JSON, OrderPlaced{Order: "o-1", Amount: 42})
	ev.ID = "01890a5d-ac96-774b-bcce-b302099a8057" // normally a fresh UUIDv7
	ev.Time = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ev.Source = "/orders"
	ev.Key = []byte("customer-7")
	ev.CorrelationID = "checkout-99"

	r, _ := ev.Record("orders")
	for _, h := range r.Headers {
		fmt.Printf("%s: %s\n", h.Key, h.Value)
	}
	fmt.Println("type without decoding:", event.TypeOf(r))

	back, _ := event.FromRecord(r)
	order, _ := event.Decode[OrderPlaced](back)
	fmt.Printf("%+v\n", order)
	// Output:
	// ce_specversion: 1.0
	// ce_id: 01890a5d-ac96-774b-bcce-b302099a8057
	// ce_type: order.placed
	// ce_source: /orders
	// ce_time: 2026-01-02T03:04:05Z
	// content-type: application/json
	// correlation_id: checkout-99
	// type without decoding: order.placed
	// {Order:o-1 Amount:42}
}
