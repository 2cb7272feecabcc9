package lookback

import (
	"encoding/base64"
	"encoding/json"
	"time"
	"unicode/utf8"
)

// EventJSON is how the HTTP API and `spool lookback search --json` write
// an event. Bytes that are valid UTF-8 are written as strings (key, value,
// header values); others as base64 in the *_base64 field instead.
type EventJSON struct {
	Topic         string       `json:"topic"`
	Partition     int32        `json:"partition"`
	Offset        int64        `json:"offset"`
	Timestamp     time.Time    `json:"timestamp"`
	Key           *string      `json:"key"`
	KeyBase64     string       `json:"key_base64,omitempty"`
	ID            string       `json:"id,omitempty"`
	Type          string       `json:"type,omitempty"`
	Source        string       `json:"source,omitempty"`
	Subject       string       `json:"subject,omitempty"`
	CorrelationID string       `json:"correlation_id,omitempty"`
	CausationID   string       `json:"causation_id,omitempty"`
	Headers       []HeaderJSON `json:"headers"`
	Value         *string      `json:"value"`
	ValueBase64   string       `json:"value_base64,omitempty"`
	Size          int          `json:"size"`
}

// HeaderJSON is one header of an EventJSON.
type HeaderJSON struct {
	Key         string `json:"key"`
	Value       string `json:"value"`
	ValueBase64 string `json:"value_base64,omitempty"`
}

func text(b []byte) (*string, string) {
	if b == nil {
		return nil, ""
	}
	if utf8.Valid(b) {
		s := string(b)
		return &s, ""
	}
	return nil, base64.StdEncoding.EncodeToString(b)
}

// JSON returns the wire form of e.
func (e *Event) JSON() EventJSON {
	j := EventJSON{Topic: e.Topic, Partition: e.Partition, Offset: e.Offset, Timestamp: e.Timestamp,
		ID: e.ID, Type: e.Type, Source: e.Source, Subject: e.Subject, CorrelationID: e.CorrelationID,
		CausationID: e.CausationID, Headers: make([]HeaderJSON, 0, len(e.Headers)), Size: e.Size}
	j.Key, j.KeyBase64 = text(e.Key)
	j.Value, j.ValueBase64 = text(e.Value)
	for _, h := range e.Headers {
		v, b := text(h.Value)
		hj := HeaderJSON{Key: h.Key, ValueBase64: b}
		if v != nil {
			hj.Value = *v
		}
		j.Headers = append(j.Headers, hj)
	}
	return j
}

// MarshalJSON writes e as EventJSON.
func (e *Event) MarshalJSON() ([]byte, error) { return json.Marshal(e.JSON()) }

// UnmarshalJSON reads an EventJSON.
func (e *Event) UnmarshalJSON(b []byte) error {
	var j EventJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	dec := func(s *string, b64 string) ([]byte, error) {
		if s != nil {
			return []byte(*s), nil
		}
		if b64 != "" {
			return base64.StdEncoding.DecodeString(b64)
		}
		return nil, nil
	}
	var err error
	*e = Event{Topic: j.Topic, Partition: j.Partition, Offset: j.Offset, Timestamp: j.Timestamp, ID: j.ID,
		Type: j.Type, Source: j.Source, Subject: j.Subject, CorrelationID: j.CorrelationID, CausationID: j.CausationID, Size: j.Size}
	if e.Key, err = dec(j.Key, j.KeyBase64); err != nil {
		return err
	}
	if e.Value, err = dec(j.Value, j.ValueBase64); err != nil {
		return err
	}
	for _, h := range j.Headers {
		v := []byte(h.Value)
		if h.ValueBase64 != "" {
			if v, err = base64.StdEncoding.DecodeString(h.ValueBase64); err != nil {
				return err
			}
		}
		e.Headers = append(e.Headers, Header{Key: h.Key, Value: v})
	}
	return nil
}
