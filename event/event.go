// Package event is Spool's event envelope: an event's identity, type, origin,
// correlation, trace context and payload, carried as Kafka record headers with
// the CloudEvents Kafka protocol binding in binary content mode.
//
// # Headers
//
// An Event is written to a Kafka record as follows (names are part of the wire
// contract and must not change):
//
//	header           field           notes
//	ce_specversion   (constant)      "1.0"
//	ce_id            ID              UUIDv7 by default
//	ce_type          Type            routes the event to a handler
//	ce_source        Source          URI-reference of the producer
//	ce_time          Time            RFC 3339 with nanoseconds, UTC
//	ce_subject       Subject         optional
//	content-type     ContentType     e.g. application/json
//	correlation_id   CorrelationID   the flow this event belongs to
//	causation_id     CausationID     the ID of the event that caused this one
//	traceparent      TraceParent     W3C trace context
//	tracestate       TraceState      W3C trace context
//	(anything else)  Headers         extra headers, kept in order
//
// The record key is Key, and the record value is Data. Consumers can route on
// ce_type (see [TypeOf]) without touching the payload.
package event

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Header names of the binding. They are part of the wire format.
const (
	HeaderSpecVersion   = "ce_specversion"
	HeaderID            = "ce_id"
	HeaderType          = "ce_type"
	HeaderSource        = "ce_source"
	HeaderTime          = "ce_time"
	HeaderSubject       = "ce_subject"
	HeaderContentType   = "content-type"
	HeaderCorrelationID = "correlation_id"
	HeaderCausationID   = "causation_id"
	HeaderTraceParent   = "traceparent"
	HeaderTraceState    = "tracestate"

	// SpecVersion is the CloudEvents version written in ce_specversion.
	SpecVersion = "1.0"
)

// Header is an extra record header carried by an event.
type Header struct {
	Key   string
	Value []byte
}

// Event is one event: its envelope and its (still encoded) payload.
type Event struct {
	ID            string    // ce_id; New sets a UUIDv7
	Type          string    // ce_type, e.g. "order.created"
	Source        string    // ce_source, e.g. "/orders"
	Time          time.Time // ce_time; New sets the current time
	Subject       string    // ce_subject, optional
	Key           []byte    // the Kafka record key: events with one key keep their order
	ContentType   string    // content-type of Data
	CorrelationID string    // correlation_id
	CausationID   string    // causation_id
	TraceParent   string    // traceparent (W3C)
	TraceState    string    // tracestate (W3C)
	Headers       []Header  // extra headers
	Data          []byte    // the payload, encoded per ContentType
}

// New returns an event of the given type with a fresh UUIDv7 ID and the
// current time, its payload encoded by codec (JSON or Raw).
func New(typ string, codec Codec, payload any) (*Event, error) {
	data, err := codec.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("event: encode %s payload: %w", typ, err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("event: new id: %w", err)
	}
	return &Event{
		ID:          id.String(),
		Type:        typ,
		Time:        time.Now().UTC(),
		ContentType: codec.ContentType(),
		Data:        data,
	}, nil
}

// Errors returned by Validate and FromRecord; test with errors.Is.
var (
	ErrMissingAttribute = errors.New("event: missing required attribute")
	ErrMalformed        = errors.New("event: malformed envelope")
)

// Validate reports whether the event carries the attributes CloudEvents
// requires (id, type, source).
func (e *Event) Validate() error {
	switch {
	case e.ID == "":
		return fmt.Errorf("%w: id (%s)", ErrMissingAttribute, HeaderID)
	case e.Type == "":
		return fmt.Errorf("%w: type (%s)", ErrMissingAttribute, HeaderType)
	case e.Source == "":
		return fmt.Errorf("%w: source (%s)", ErrMissingAttribute, HeaderSource)
	}
	return nil
}

// Header returns the value of the extra header key, or nil.
func (e *Event) Header(key string) []byte {
	for _, h := range e.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return nil
}

// SetHeader sets an extra header, replacing an existing one of that key.
func (e *Event) SetHeader(key string, value []byte) {
	for i, h := range e.Headers {
		if h.Key == key {
			e.Headers[i].Value = value
			return
		}
	}
	e.Headers = append(e.Headers, Header{Key: key, Value: value})
}

// Record encodes the event as a record for topic. It fails if the event does
// not validate.
func (e *Event) Record(topic string) (*kgo.Record, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	hs := make([]kgo.RecordHeader, 0, 10+len(e.Headers))
	add := func(k, v string) {
		if v != "" {
			hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
	}
	add(HeaderSpecVersion, SpecVersion)
	add(HeaderID, e.ID)
	add(HeaderType, e.Type)
	add(HeaderSource, e.Source)
	if !e.Time.IsZero() {
		add(HeaderTime, e.Time.UTC().Format(time.RFC3339Nano))
	}
	add(HeaderSubject, e.Subject)
	add(HeaderContentType, e.ContentType)
	add(HeaderCorrelationID, e.CorrelationID)
	add(HeaderCausationID, e.CausationID)
	add(HeaderTraceParent, e.TraceParent)
	add(HeaderTraceState, e.TraceState)
	for _, h := range e.Headers {
		hs = append(hs, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	return &kgo.Record{Topic: topic, Key: e.Key, Value: e.Data, Headers: hs}, nil
}

// FromRecord decodes the envelope of r without decoding its payload. Missing
// attributes are left empty (a record from a plain Kafka producer yields an
// event with only Key, Data and Headers); call Validate to require them. It
// fails only if a present attribute is malformed (ce_time not RFC 3339, or a
// ce_specversion other than 1.0). Data aliases r.Value.
func FromRecord(r *kgo.Record) (*Event, error) {
	e := new(Event)
	if err := DecodeRecord(e, r); err != nil {
		return nil, err
	}
	return e, nil
}

// DecodeRecord is FromRecord into e, which it overwrites, for consumers
// that allocate events in bulk. On error e is left partly filled.
func DecodeRecord(e *Event, r *kgo.Record) error {
	// The values of the known headers are copied into one string and the
	// fields are slices of it: one allocation per record, not one per header
	// (this runs for every event the agent consumes).
	var (
		spans [numFields]struct{ start, end int }
		set   [numFields]bool
		size  int
	)
	for _, h := range r.Headers {
		if f := fieldOf(h.Key); f >= 0 {
			size += len(h.Value)
		}
	}
	var b strings.Builder
	b.Grow(size)
	*e = Event{Key: r.Key, Data: r.Value}
	for _, h := range r.Headers {
		f := fieldOf(h.Key)
		switch f {
		case -1:
			e.Headers = append(e.Headers, Header{Key: h.Key, Value: h.Value})
			continue
		case fieldSpecVersion:
			if string(h.Value) != SpecVersion {
				return fmt.Errorf("%w: %s %q, want %q", ErrMalformed, HeaderSpecVersion, h.Value, SpecVersion)
			}
			continue
		}
		spans[f].start = b.Len()
		b.Write(h.Value)
		spans[f].end = b.Len()
		set[f] = true
	}
	all := b.String()
	get := func(f int) string { return all[spans[f].start:spans[f].end] }
	e.ID, e.Type, e.Source = get(fieldID), get(fieldType), get(fieldSource)
	e.Subject, e.ContentType = get(fieldSubject), get(fieldContentType)
	e.CorrelationID, e.CausationID = get(fieldCorrelationID), get(fieldCausationID)
	e.TraceParent, e.TraceState = get(fieldTraceParent), get(fieldTraceState)
	if set[fieldTime] {
		v := get(fieldTime)
		t, ok := parseUTC(v)
		if !ok {
			var err error
			if t, err = time.Parse(time.RFC3339Nano, v); err != nil {
				return fmt.Errorf("%w: %s %q: %v", ErrMalformed, HeaderTime, v, err)
			}
		}
		e.Time = t
	}
	return nil
}

// DecodeRecords decodes rs[i] into evs[i] (overwriting it) and sets errs[i]
// to nil or to the error DecodeRecord would return, for consumers that
// decode in bulk. The values of the known headers of all of rs are copied
// into one string and the fields are slices of it: one allocation per call,
// not per record; an event kept alive keeps that string alive. evs and errs
// must be at least as long as rs.
func DecodeRecords(evs []Event, rs []*kgo.Record, errs []error) {
	size := 0
	for _, r := range rs {
		for _, h := range r.Headers {
			if fieldOf(h.Key) >= 0 {
				size += len(h.Value)
			}
		}
	}
	var b strings.Builder
	b.Grow(size)
	for i, r := range rs {
		e := &evs[i]
		*e = Event{Key: r.Key, Data: r.Value}
		errs[i] = nil
		for _, h := range r.Headers {
			switch fieldOf(h.Key) {
			case -1:
				e.Headers = append(e.Headers, Header{Key: h.Key, Value: h.Value})
			case fieldSpecVersion:
				if string(h.Value) != SpecVersion && errs[i] == nil {
					errs[i] = fmt.Errorf("%w: %s %q, want %q", ErrMalformed, HeaderSpecVersion, h.Value, SpecVersion)
				}
			default:
				b.Write(h.Value)
			}
		}
	}
	// The same walk again, slicing the values out of the string.
	all, off := b.String(), 0
	for i, r := range rs {
		e := &evs[i]
		var tm string
		hasTime := false
		for _, h := range r.Headers {
			f := fieldOf(h.Key)
			if f < 0 || f == fieldSpecVersion {
				continue
			}
			v := all[off : off+len(h.Value)]
			off += len(h.Value)
			switch f {
			case fieldID:
				e.ID = v
			case fieldType:
				e.Type = v
			case fieldSource:
				e.Source = v
			case fieldTime:
				tm, hasTime = v, true
			case fieldSubject:
				e.Subject = v
			case fieldContentType:
				e.ContentType = v
			case fieldCorrelationID:
				e.CorrelationID = v
			case fieldCausationID:
				e.CausationID = v
			case fieldTraceParent:
				e.TraceParent = v
			case fieldTraceState:
				e.TraceState = v
			}
		}
		if !hasTime || errs[i] != nil {
			continue
		}
		t, ok := parseUTC(tm)
		if !ok {
			var err error
			if t, err = time.Parse(time.RFC3339Nano, tm); err != nil {
				errs[i] = fmt.Errorf("%w: %s %q: %v", ErrMalformed, HeaderTime, tm, err)
				continue
			}
		}
		e.Time = t
	}
}

// parseUTC parses exactly the form Record writes, RFC 3339 in UTC with 0 to
// 9 fraction digits ("2006-01-02T15:04:05.999999999Z"), with every field in
// range, to the same time.Time as time.Parse(time.RFC3339Nano, s), in a
// fraction of its time. It reports false for anything else, which the
// caller hands to time.Parse (other offsets, leap seconds, errors).
func parseUTC(s string) (time.Time, bool) {
	if len(s) < 20 || len(s) > 30 || len(s) == 21 || s[len(s)-1] != 'Z' ||
		s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	year, month, day := atoi(s[0:4]), atoi(s[5:7]), atoi(s[8:10])
	hour, minute, sec := atoi(s[11:13]), atoi(s[14:16]), atoi(s[17:19])
	ns := 0
	if len(s) > 20 {
		if s[19] != '.' {
			return time.Time{}, false
		}
		frac := s[20 : len(s)-1]
		if ns = atoi(frac); ns < 0 {
			return time.Time{}, false
		}
		for range 9 - len(frac) {
			ns *= 10
		}
	}
	if year < 0 || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, ns, time.UTC), true
}

// atoi parses a non-empty string of ASCII digits, or returns -1.
func atoi(s string) int {
	if s == "" {
		return -1
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i] - '0'
		if c > 9 {
			return -1
		}
		n = n*10 + int(c)
	}
	return n
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// The known headers, as indexes for FromRecord.
const (
	fieldSpecVersion = iota
	fieldID
	fieldType
	fieldSource
	fieldTime
	fieldSubject
	fieldContentType
	fieldCorrelationID
	fieldCausationID
	fieldTraceParent
	fieldTraceState
	numFields
)

func fieldOf(key string) int {
	switch key {
	case HeaderSpecVersion:
		return fieldSpecVersion
	case HeaderID:
		return fieldID
	case HeaderType:
		return fieldType
	case HeaderSource:
		return fieldSource
	case HeaderTime:
		return fieldTime
	case HeaderSubject:
		return fieldSubject
	case HeaderContentType:
		return fieldContentType
	case HeaderCorrelationID:
		return fieldCorrelationID
	case HeaderCausationID:
		return fieldCausationID
	case HeaderTraceParent:
		return fieldTraceParent
	case HeaderTraceState:
		return fieldTraceState
	}
	return -1
}

// TypeOf returns the ce_type header of r, scanning headers only: the payload
// is never decoded. It returns "" if the record has no ce_type.
func TypeOf(r *kgo.Record) string {
	for _, h := range r.Headers {
		if h.Key == HeaderType {
			return string(h.Value)
		}
	}
	return ""
}

// IDOf returns the ce_id header of r, or "".
func IDOf(r *kgo.Record) string {
	for _, h := range r.Headers {
		if h.Key == HeaderID {
			return string(h.Value)
		}
	}
	return ""
}

// Equal reports whether a and b carry the same envelope and payload (times
// compared with time.Time.Equal).
func Equal(a, b *Event) bool {
	if a.ID != b.ID || a.Type != b.Type || a.Source != b.Source || !a.Time.Equal(b.Time) ||
		a.Subject != b.Subject || !bytes.Equal(a.Key, b.Key) || a.ContentType != b.ContentType ||
		a.CorrelationID != b.CorrelationID || a.CausationID != b.CausationID ||
		a.TraceParent != b.TraceParent || a.TraceState != b.TraceState ||
		!bytes.Equal(a.Data, b.Data) || len(a.Headers) != len(b.Headers) {
		return false
	}
	for i := range a.Headers {
		if a.Headers[i].Key != b.Headers[i].Key || !bytes.Equal(a.Headers[i].Value, b.Headers[i].Value) {
			return false
		}
	}
	return true
}

type ctxKey struct{}

// NewContext returns ctx carrying ev as the event being handled. The agent
// does this for every handler call; the producer reads it to set causation
// and correlation of events published while handling ev.
func NewContext(ctx context.Context, ev *Event) context.Context {
	return &Context{Context: ctx, Event: ev}
}

// Context is a context carrying an event, as NewContext returns. Set both
// fields; it is exported so that a consumer can allocate it together with
// its other per-event state (the agent does) instead of once per event.
type Context struct {
	context.Context        // the parent
	Event           *Event // returned by FromContext
}

// Value returns c.Event for the key FromContext uses, or the parent's value.
func (c *Context) Value(key any) any {
	if _, ok := key.(ctxKey); ok {
		return c.Event
	}
	return c.Context.Value(key)
}

// FromContext returns the event being handled in ctx, if any.
func FromContext(ctx context.Context) (*Event, bool) {
	ev, ok := ctx.Value(ctxKey{}).(*Event)
	return ev, ok
}

// Follow sets e's causation to parent's ID and inherits parent's correlation
// ID (or, if parent has none, uses parent's ID as the correlation ID). Fields
// already set on e are kept.
func (e *Event) Follow(parent *Event) {
	if e.CausationID == "" {
		e.CausationID = parent.ID
	}
	if e.CorrelationID == "" {
		e.CorrelationID = parent.CorrelationID
		if e.CorrelationID == "" {
			e.CorrelationID = parent.ID
		}
	}
}
