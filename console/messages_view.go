package console

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spoolmq/spool/event"
)

// msgView is a record as the page shows it: the summary row and the
// decoded views below it.
type msgView struct {
	DOMID     string // "m-P-O"
	Partition int32
	Offset    int64
	Time      string
	Key       string
	KeyKind   string // "text", "binary" (Key is hex), "null"
	KeyCopy   string // the key as text or base64
	Type      string
	Preview   string
	Size      int
	Body      lbBody
	Envelope  []lbField // the CloudEvents envelope, when the record has one
	Headers   []msgHeaderView
	ValueCopy string // the value as text or base64
	JSON      string // the whole record as JSON (the export's line)
	NoCopy    bool   // the value is too large to copy from the page
	Flow      string // the correlation id, for the lookback flow link
}

// msgMaxCopy bounds the values a page carries whole for its copy buttons;
// larger ones are shown truncated and exported, not copied.
const msgMaxCopy = 256 << 10

type msgHeaderView struct {
	Key, Value string
	Binary     bool // Value is hex
}

// msgEnvelopeHeaders are the envelope's fields in the order the page lists
// them.
var msgEnvelopeHeaders = []string{event.HeaderID, event.HeaderSource, event.HeaderType, event.HeaderSubject,
	event.HeaderTime, event.HeaderSpecVersion, event.HeaderContentType, event.HeaderCorrelationID,
	event.HeaderCausationID, event.HeaderTraceParent, event.HeaderTraceState}

func msgViewRecord(r *msgRecord) msgView {
	v := msgView{DOMID: "m-" + strconv.Itoa(int(r.Partition)) + "-" + strconv.FormatInt(r.Offset, 10),
		Partition: r.Partition, Offset: r.Offset, Time: r.Timestamp.UTC().Format("2006-01-02 15:04:05.000"),
		Type: r.header(event.HeaderType), Size: len(r.Key) + len(r.Value)}
	switch {
	case r.KeyNull:
		v.KeyKind = "null"
	case utf8.Valid(r.Key):
		v.KeyKind, v.Key, v.KeyCopy = "text", string(r.Key), string(r.Key)
	default:
		v.KeyKind, v.Key, v.KeyCopy = "binary", "0x"+hex.EncodeToString(r.Key), base64.StdEncoding.EncodeToString(r.Key)
	}
	var value *string
	b64 := ""
	if !r.ValueNull {
		if utf8.Valid(r.Value) {
			s := string(r.Value)
			value, v.ValueCopy = &s, s
		} else {
			b64 = base64.StdEncoding.EncodeToString(r.Value)
			v.ValueCopy = b64
		}
	}
	v.Body = decodeBody(value, b64, r.header(event.HeaderContentType))
	v.Preview = msgPreview(r.Value, v.Body.Kind)
	if r.header(event.HeaderID) != "" || r.header(event.HeaderType) != "" {
		for _, name := range msgEnvelopeHeaders {
			if s := r.header(name); s != "" {
				v.Envelope = append(v.Envelope, lbField{Name: name, Value: s})
			}
		}
	}
	for _, h := range r.Headers {
		if utf8.Valid(h.Value) {
			v.Headers = append(v.Headers, msgHeaderView{Key: h.Key, Value: string(h.Value)})
		} else {
			v.Headers = append(v.Headers, msgHeaderView{Key: h.Key, Value: hex.EncodeToString(h.Value), Binary: true})
		}
	}
	if len(r.Value) > msgMaxCopy {
		v.NoCopy, v.ValueCopy = true, ""
	} else {
		b, _ := json.Marshal(msgRecordJSON(r))
		v.JSON = string(b)
	}
	v.Flow = r.header(event.HeaderCorrelationID)
	return v
}

// msgPreview is the start of a value on one line.
func msgPreview(b []byte, kind string) string {
	switch kind {
	case "none":
		return "null"
	case "binary":
		n := min(len(b), 24)
		s := hex.EncodeToString(b[:n])
		if n < len(b) {
			s += "…"
		}
		return "0x" + s + " (" + strconv.Itoa(len(b)) + " bytes)"
	}
	s := strings.Join(strings.Fields(string(b[:min(len(b), 400)])), " ")
	if r := []rune(s); len(r) > 120 {
		s = string(r[:120]) + "…"
	}
	return s
}

// msgJSON is a record in JSON, as the export writes it and the copy
// button copies it: the lookback API's event shape, so tools read both.
type msgJSON struct {
	Topic       string     `json:"topic"`
	Partition   int32      `json:"partition"`
	Offset      int64      `json:"offset"`
	Timestamp   time.Time  `json:"timestamp"`
	Key         *string    `json:"key"`
	KeyBase64   string     `json:"key_base64,omitempty"`
	Headers     []lbHeader `json:"headers"`
	Value       *string    `json:"value"`
	ValueBase64 string     `json:"value_base64,omitempty"`
}

func msgRecordJSON(r *msgRecord) msgJSON {
	j := msgJSON{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UTC(), Headers: []lbHeader{}}
	j.Key, j.KeyBase64 = msgTextOrBase64(r.Key, r.KeyNull)
	j.Value, j.ValueBase64 = msgTextOrBase64(r.Value, r.ValueNull)
	for _, h := range r.Headers {
		if utf8.Valid(h.Value) {
			j.Headers = append(j.Headers, lbHeader{Key: h.Key, Value: string(h.Value)})
		} else {
			j.Headers = append(j.Headers, lbHeader{Key: h.Key, ValueBase64: base64.StdEncoding.EncodeToString(h.Value)})
		}
	}
	return j
}

// msgTextOrBase64 is a byte string in JSON: text when it is UTF-8, else
// base64 in the second field; nil for null.
func msgTextOrBase64(b []byte, null bool) (*string, string) {
	if null {
		return nil, ""
	}
	if utf8.Valid(b) {
		s := string(b)
		return &s, ""
	}
	return nil, base64.StdEncoding.EncodeToString(b)
}

// msgFromArchive is an archived event as a record.
func msgFromArchive(e *lbEvent) *msgRecord {
	r := &msgRecord{Topic: e.Topic, Partition: e.Partition, Offset: e.Offset, Timestamp: e.Timestamp}
	r.Key, r.KeyNull = msgBytesOf(e.Key, e.KeyBase64)
	r.Value, r.ValueNull = msgBytesOf(e.Value, e.ValueBase64)
	for _, h := range e.Headers {
		v := []byte(h.Value)
		if h.ValueBase64 != "" {
			v, _ = base64.StdEncoding.DecodeString(h.ValueBase64)
		}
		r.Headers = append(r.Headers, msgKgoHeader(h.Key, v))
	}
	return r
}

func msgBytesOf(s *string, b64 string) ([]byte, bool) {
	switch {
	case s != nil:
		return []byte(*s), false
	case b64 != "":
		b, err := base64.StdEncoding.DecodeString(b64)
		if err == nil {
			return b, false
		}
		return []byte(b64), false
	}
	return nil, true
}
