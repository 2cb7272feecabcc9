package event_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/event"
)

func TestRoundTrip(t *testing.T) {
	ev, err := event.New("t", event.Raw, []byte{0, 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if id, err := uuid.Parse(ev.ID); err != nil || id.Version() != 7 {
		t.Fatalf("id %q is not a UUIDv7: %v", ev.ID, err)
	}
	ev.Source, ev.Subject, ev.Key = "/s", "subj", []byte("k")
	ev.CorrelationID, ev.CausationID = "c1", "c0"
	ev.TraceParent, ev.TraceState = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "a=b"
	ev.SetHeader("x", []byte("1"))
	ev.SetHeader("x", []byte("2"))
	r, err := ev.Record("top")
	if err != nil {
		t.Fatal(err)
	}
	back, err := event.FromRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	if !event.Equal(ev, back) || string(back.Header("x")) != "2" || len(back.Headers) != 1 {
		t.Fatalf("round trip changed the event:\n%+v\n%+v", ev, back)
	}
}

func TestBadInput(t *testing.T) {
	if _, err := (&event.Event{Type: "t", Source: "s"}).Record("x"); !errors.Is(err, event.ErrMissingAttribute) {
		t.Errorf("missing id: %v", err)
	}
	for _, hs := range [][]kgo.RecordHeader{
		{{Key: event.HeaderTime, Value: []byte("noon")}},
		{{Key: event.HeaderSpecVersion, Value: []byte("0.3")}},
	} {
		if _, err := event.FromRecord(&kgo.Record{Headers: hs}); !errors.Is(err, event.ErrMalformed) {
			t.Errorf("%v: %v", hs, err)
		}
	}
	if _, err := event.New("t", event.Raw, 42); err == nil {
		t.Error("raw codec took an int")
	}
	if _, err := event.Decode[int](&event.Event{ContentType: "application/xml"}); !errors.Is(err, event.ErrContentType) {
		t.Errorf("xml: %v", err)
	}
	if _, err := event.Decode[int](&event.Event{ContentType: "application/json", Data: []byte("{")}); err == nil {
		t.Error("decoded bad JSON")
	}
	// A plain Kafka record decodes to an event with only key and data.
	ev, err := event.FromRecord(&kgo.Record{Key: []byte("k"), Value: []byte("v")})
	if err != nil || ev.Validate() == nil || string(ev.Key) != "k" {
		t.Errorf("plain record: %+v %v", ev, err)
	}
}

func TestFollow(t *testing.T) {
	parent := &event.Event{ID: "p"}
	child := &event.Event{}
	child.Follow(parent)
	if child.CausationID != "p" || child.CorrelationID != "p" {
		t.Fatalf("%+v", child)
	}
	parent.CorrelationID = "flow"
	grandchild := &event.Event{}
	grandchild.Follow(parent)
	if grandchild.CorrelationID != "flow" {
		t.Fatalf("%+v", grandchild)
	}
	ctx := event.NewContext(context.Background(), parent)
	if got, ok := event.FromContext(ctx); !ok || got != parent {
		t.Fatal("context lost the event")
	}
	type k struct{}
	outer := context.WithValue(event.NewContext(context.WithValue(context.Background(), k{}, "v"), parent), k{}, "w")
	if got, ok := event.FromContext(outer); !ok || got != parent {
		t.Fatal("derived context lost the event")
	}
	if inner := event.NewContext(context.WithValue(context.Background(), k{}, "v"), parent); inner.Value(k{}) != "v" {
		t.Fatal("event context hides its parent's values")
	}
	if _, ok := event.FromContext(context.Background()); ok {
		t.Fatal("event in a bare context")
	}
	_ = time.Now
}

// TestDecodeRecordOverwrites: decoding into a used Event leaves nothing of
// the old one, and the fields do not change when the record's header bytes
// are modified afterwards (they are copied).
func TestDecodeRecordOverwrites(t *testing.T) {
	full, err := event.New("full", event.JSON, map[string]int{"a": 1})
	if err != nil {
		t.Fatal(err)
	}
	full.Source, full.Subject, full.CorrelationID, full.TraceParent = "/s", "subj", "c", "tp"
	full.SetHeader("x", []byte("1"))
	r1, err := full.Record("t")
	if err != nil {
		t.Fatal(err)
	}
	var e event.Event
	if err := event.DecodeRecord(&e, r1); err != nil || !event.Equal(&e, full) {
		t.Fatalf("decode: %v\n%+v\n%+v", err, &e, full)
	}
	plain := &kgo.Record{Key: []byte("k"), Value: []byte("v"), Headers: []kgo.RecordHeader{
		{Key: event.HeaderType, Value: []byte("small")},
	}}
	if err := event.DecodeRecord(&e, plain); err != nil {
		t.Fatal(err)
	}
	want := event.Event{Type: "small", Key: []byte("k"), Data: []byte("v")}
	if !event.Equal(&e, &want) {
		t.Fatalf("stale fields after a second decode: %+v", e)
	}
	plain.Headers[0].Value[0] = 'S'
	if e.Type != "small" {
		t.Fatalf("Type aliases the record's header bytes: %q", e.Type)
	}
}

// TestDecodeRecordsMatchesDecodeRecord: bulk decoding gives each record
// exactly what DecodeRecord gives it, errors included, with the values
// copied (changing the records afterwards changes no event).
func TestDecodeRecordsMatchesDecodeRecord(t *testing.T) {
	full := &event.Event{ID: "id", Type: "t", Source: "/s", Time: time.Date(2024, 2, 29, 1, 2, 3, 4000, time.UTC),
		Subject: "sub", Key: []byte("k"), ContentType: "text/plain", CorrelationID: "c", CausationID: "z",
		TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", TraceState: "a=b",
		Headers: []event.Header{{Key: "x", Value: []byte("1")}}, Data: []byte("data")}
	good, err := full.Record("t")
	if err != nil {
		t.Fatal(err)
	}
	minimal, err := (&event.Event{ID: "i2", Type: "t2", Source: "/s2"}).Record("t")
	if err != nil {
		t.Fatal(err)
	}
	offset := &kgo.Record{Headers: []kgo.RecordHeader{{Key: event.HeaderTime, Value: []byte("2024-01-01T10:00:00.5+02:00")}}}
	badTime := &kgo.Record{Headers: []kgo.RecordHeader{{Key: event.HeaderID, Value: []byte("b")}, {Key: event.HeaderTime, Value: []byte("yesterday")}}}
	badSpec := &kgo.Record{Headers: []kgo.RecordHeader{{Key: event.HeaderSpecVersion, Value: []byte("0.3")}, {Key: event.HeaderTime, Value: []byte("nope")}}}
	plain := &kgo.Record{Key: []byte("k"), Value: []byte("v"), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("1")}}}
	dup := &kgo.Record{Headers: []kgo.RecordHeader{{Key: event.HeaderType, Value: []byte("first")}, {Key: "x", Value: nil},
		{Key: event.HeaderTime, Value: []byte("2024-01-01T00:00:00Z")}, {Key: event.HeaderType, Value: []byte("last")},
		{Key: event.HeaderTime, Value: []byte("2025-01-01T00:00:00.123Z")}}}
	rs := []*kgo.Record{good, badTime, minimal, badSpec, dup, offset, plain, good}

	evs := make([]event.Event, len(rs))
	for i := range evs {
		evs[i] = *full // overwritten
	}
	errs := make([]error, len(rs))
	event.DecodeRecords(evs, rs, errs)
	for i, r := range rs {
		var want event.Event
		werr := event.DecodeRecord(&want, r)
		if (werr == nil) != (errs[i] == nil) || werr != nil && werr.Error() != errs[i].Error() {
			t.Fatalf("record %d: error %v, DecodeRecord says %v", i, errs[i], werr)
		}
		if werr == nil && !event.Equal(&evs[i], &want) {
			t.Fatalf("record %d: %+v, DecodeRecord says %+v", i, evs[i], want)
		}
	}
	if !errors.Is(errs[1], event.ErrMalformed) || !errors.Is(errs[3], event.ErrMalformed) {
		t.Fatalf("errors %v", errs)
	}
	if evs[4].Type != "last" || evs[4].Time.Year() != 2025 {
		t.Fatalf("repeated headers: %+v, want the last ones", evs[4])
	}
	for _, h := range good.Headers {
		clear(h.Value)
	}
	if evs[0].ID != "id" || evs[0].TraceState != "a=b" || evs[7].Source != "/s" {
		t.Fatalf("fields alias the record: %+v", evs[0])
	}
}
