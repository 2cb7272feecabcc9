package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/httpapi"
)

// CloudEvents HTTP binding: binary mode carries the attributes in ce-*
// headers and the data as the body; structured mode sends the whole event
// as application/cloudevents+json (a JSON array of them with
// application/cloudevents-batch+json). Either becomes a record with the
// event package's envelope (the Kafka binary binding), so consumers see
// the same headers whichever way the event came in.
//
// Extension attributes: partitionkey is the record key (as the Kafka
// binding says), correlationid and causationid are the envelope's
// correlation_id and causation_id, traceparent and tracestate are the trace
// context; any other becomes a ce_<name> header.

const (
	ctStructured = "application/cloudevents+json"
	ctBatch      = "application/cloudevents-batch+json"
)

// produceEvents serves POST /api/topics/{topic}/events.
func (g *Gateway) produceEvents(w http.ResponseWriter, r *http.Request) error {
	topic, err := pathTopic(r)
	if err != nil {
		return err
	}
	principal, err := g.authorize(r, OpProduce, topic)
	if err != nil {
		return err
	}
	body, err := readBody(w, r, g.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	evs, err := parseCloudEvents(r, body)
	if err != nil {
		return err
	}
	if len(evs) > g.cfg.MaxRecords {
		return httpapi.Errorf(http.StatusRequestEntityTooLarge, "%d events in one request; the limit is %d", len(evs), g.cfg.MaxRecords)
	}
	recs := make([]*kgo.Record, len(evs))
	for i, ev := range evs {
		if recs[i], err = ev.Record(topic); err != nil {
			return httpapi.Errorf(http.StatusBadRequest, "event %d: %v", i, err)
		}
	}
	if async(r) {
		if len(recs) != 1 {
			return httpapi.Errorf(http.StatusBadRequest, "Prefer: respond-async takes exactly one event (the command); got %d", len(recs))
		}
		opts := commandOptions(r)
		opts.event = evs[0]
		return g.submit(w, r, principal, topic, recs[0], opts)
	}
	return g.idempotent(w, r, principal, func(late func(int, any, error)) (int, any, error) { return g.produce("event", recs, late) })
}

// readBody reads the body up to limit bytes (413 past it).
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, httpapi.Errorf(http.StatusRequestEntityTooLarge, "request body is larger than the limit of %d bytes", limit)
	}
	if err != nil {
		return nil, httpapi.Errorf(http.StatusBadRequest, "reading the request body: %v", err)
	}
	return b, nil
}

// parseCloudEvents reads the events of a request in either content mode.
func parseCloudEvents(r *http.Request, body []byte) ([]*event.Event, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case ctStructured:
		var m map[string]json.RawMessage
		if err := strictJSON(body, &m); err != nil {
			return nil, err
		}
		ev, err := structuredEvent(m)
		if err != nil {
			return nil, err
		}
		return []*event.Event{ev}, nil
	case ctBatch:
		var ms []map[string]json.RawMessage
		if err := strictJSON(body, &ms); err != nil {
			return nil, err
		}
		if len(ms) == 0 {
			return nil, httpapi.Errorf(http.StatusBadRequest, "the batch holds no events")
		}
		out := make([]*event.Event, len(ms))
		for i, m := range ms {
			ev, err := structuredEvent(m)
			if err != nil {
				return nil, httpapi.Errorf(http.StatusBadRequest, "event %d: %v", i, err)
			}
			out[i] = ev
		}
		return out, nil
	}
	if r.Header.Get("ce-specversion") == "" && r.Header.Get("ce-id") == "" && r.Header.Get("ce-type") == "" {
		return nil, httpapi.Errorf(http.StatusUnsupportedMediaType,
			"not a CloudEvent: send ce-specversion, ce-id, ce-type and ce-source headers (binary mode) or Content-Type %s (structured mode)", ctStructured)
	}
	ev, err := binaryEvent(r.Header, body)
	if err != nil {
		return nil, err
	}
	return []*event.Event{ev}, nil
}

func strictJSON(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return httpapi.Errorf(http.StatusBadRequest, "request body is not a valid CloudEvent in JSON: %v", err)
	}
	return nil
}

// setAttr sets one CloudEvents attribute on ev; ok is false for an
// unknown (extension) attribute, which it sets as a ce_<name> header.
func setAttr(ev *event.Event, name, v string) error {
	switch name {
	case "specversion":
		if v != event.SpecVersion {
			return httpapi.Errorf(http.StatusBadRequest, "specversion %q is not supported; send 1.0", v)
		}
	case "id":
		ev.ID = v
	case "type":
		ev.Type = v
	case "source":
		ev.Source = v
	case "subject":
		ev.Subject = v
	case "time":
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return httpapi.Errorf(http.StatusBadRequest, "time %q is not RFC 3339", v)
		}
		ev.Time = t.UTC()
	case "datacontenttype":
		ev.ContentType = v
	case "partitionkey":
		ev.Key = []byte(v)
	case "correlationid":
		ev.CorrelationID = v
	case "causationid":
		ev.CausationID = v
	case "traceparent":
		ev.TraceParent = v
	case "tracestate":
		ev.TraceState = v
	case "dataschema":
		ev.SetHeader("ce_dataschema", []byte(v))
	default:
		if !validAttrName(name) {
			return httpapi.Errorf(http.StatusBadRequest, "attribute name %q: CloudEvents attribute names are lower-case letters and digits", name)
		}
		ev.SetHeader("ce_"+name, []byte(v))
	}
	return nil
}

func validAttrName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func requireAttrs(ev *event.Event, sawSpec bool) error {
	var missing []string
	if !sawSpec {
		missing = append(missing, "specversion")
	}
	if ev.ID == "" {
		missing = append(missing, "id")
	}
	if ev.Type == "" {
		missing = append(missing, "type")
	}
	if ev.Source == "" {
		missing = append(missing, "source")
	}
	if len(missing) > 0 {
		return httpapi.Errorf(http.StatusBadRequest, "CloudEvent is missing required attributes: %s", strings.Join(missing, ", "))
	}
	return nil
}

func binaryEvent(h http.Header, body []byte) (*event.Event, error) {
	ev := &event.Event{ContentType: h.Get("Content-Type"), Data: body}
	sawSpec := false
	for k, vs := range h {
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, "ce-") || len(vs) == 0 {
			continue
		}
		name := strings.TrimPrefix(lk, "ce-")
		v, err := url.PathUnescape(vs[0])
		if err != nil {
			v = vs[0]
		}
		if name == "specversion" {
			sawSpec = true
		}
		if err := setAttr(ev, name, v); err != nil {
			return nil, err
		}
	}
	if tp := h.Get("traceparent"); tp != "" && ev.TraceParent == "" {
		ev.TraceParent, ev.TraceState = tp, h.Get("tracestate")
	}
	if len(body) == 0 {
		ev.Data = nil
	}
	return ev, requireAttrs(ev, sawSpec)
}

func structuredEvent(m map[string]json.RawMessage) (*event.Event, error) {
	ev := &event.Event{}
	sawSpec := false
	var data, data64 json.RawMessage
	for name, raw := range m {
		switch name {
		case "data":
			data = raw
			continue
		case "data_base64":
			data64 = raw
			continue
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			if name == "specversion" || name == "id" || name == "type" || name == "source" || name == "time" {
				return nil, httpapi.Errorf(http.StatusBadRequest, "attribute %q must be a string", name)
			}
			v = string(raw) // an extension of another JSON type: its JSON text
		}
		if name == "specversion" {
			sawSpec = true
		}
		if err := setAttr(ev, name, v); err != nil {
			return nil, err
		}
	}
	switch {
	case data != nil && data64 != nil:
		return nil, httpapi.Errorf(http.StatusBadRequest, "give data or data_base64, not both")
	case data64 != nil:
		var s string
		if err := json.Unmarshal(data64, &s); err != nil {
			return nil, httpapi.Errorf(http.StatusBadRequest, "data_base64 must be a string")
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, httpapi.Errorf(http.StatusBadRequest, "data_base64 is not standard base64: %v", err)
		}
		ev.Data = b
	case data != nil && !bytes.Equal(data, []byte("null")):
		if ev.ContentType == "" {
			ev.ContentType = "application/json"
		}
		if isJSON(ev.ContentType) {
			var buf bytes.Buffer
			if err := json.Compact(&buf, data); err != nil {
				return nil, httpapi.Errorf(http.StatusBadRequest, "data: %v", err)
			}
			ev.Data = buf.Bytes()
		} else {
			// Non-JSON data in structured mode is a JSON string.
			var s string
			if err := json.Unmarshal(data, &s); err != nil {
				return nil, httpapi.Errorf(http.StatusBadRequest, "data of content type %q must be a JSON string (or use data_base64)", ev.ContentType)
			}
			ev.Data = []byte(s)
		}
	}
	return ev, requireAttrs(ev, sawSpec)
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

var _ = fmt.Sprintf
