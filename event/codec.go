package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
)

// Codec encodes payloads to bytes and back, naming the content type it
// writes.
type Codec interface {
	ContentType() string
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// JSON encodes payloads with encoding/json as application/json.
var JSON Codec = jsonCodec{}

// Raw passes []byte (or string) payloads through as application/octet-stream.
var Raw Codec = rawCodec{}

type jsonCodec struct{}

func (jsonCodec) ContentType() string           { return "application/json" }
func (jsonCodec) Marshal(v any) ([]byte, error) { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error {
	return json.Unmarshal(data, v)
}

type rawCodec struct{}

func (rawCodec) ContentType() string { return "application/octet-stream" }

func (rawCodec) Marshal(v any) ([]byte, error) {
	switch p := v.(type) {
	case []byte:
		return p, nil
	case string:
		return []byte(p), nil
	case nil:
		return nil, nil
	}
	return nil, fmt.Errorf("event: raw codec takes []byte or string, not %T", v)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	switch p := v.(type) {
	case *[]byte:
		*p = append((*p)[:0], data...)
		return nil
	case *string:
		*p = string(data)
		return nil
	}
	return fmt.Errorf("event: raw codec decodes into *[]byte or *string, not %T", v)
}

// ErrContentType is returned by Decode for a content type it has no codec for.
var ErrContentType = errors.New("event: unsupported content type")

// CodecFor returns the codec for a content type: JSON for application/json
// and any +json type (and for an empty content type), Raw for
// application/octet-stream and text/*.
func CodecFor(contentType string) (Codec, error) {
	if contentType == "" {
		return JSON, nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrContentType, contentType, err)
	}
	switch {
	case mt == "application/json" || len(mt) > 5 && mt[len(mt)-5:] == "+json":
		return JSON, nil
	case mt == "application/octet-stream" || len(mt) > 5 && mt[:5] == "text/":
		return Raw, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrContentType, contentType)
}

// Decode decodes ev's payload into a T with the codec of its content type.
func Decode[T any](ev *Event) (T, error) {
	var v T
	c, err := CodecFor(ev.ContentType)
	if err != nil {
		return v, err
	}
	if err := c.Unmarshal(ev.Data, &v); err != nil {
		return v, fmt.Errorf("event: decode %s %s payload into %T: %w", ev.Type, ev.ID, v, err)
	}
	return v, nil
}
