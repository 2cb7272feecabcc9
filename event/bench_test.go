package event_test

import (
	"testing"

	"github.com/spoolmq/spool/event"
)

// BenchmarkFromRecord decodes the envelope of a typical record (six
// headers written by Event.Record).
func BenchmarkFromRecord(b *testing.B) {
	ev, err := event.New("order.created", event.Raw, []byte("payload-0123456789"))
	if err != nil {
		b.Fatal(err)
	}
	ev.Source, ev.Key = "/bench", []byte("key-1")
	r, err := ev.Record("t")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := event.FromRecord(r); err != nil {
			b.Fatal(err)
		}
	}
}
