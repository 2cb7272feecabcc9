package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/event"
)

// Record headers of the request/reply contract the gateway uses (part of
// the wire format; any language can speak it):
//
//	header           on        value
//	correlation_id   both      the request id
//	spool_reply_to   command   the topic to reply to
//	spool_status     reply     "ok" (the default) or "error" (the value is then the error text)
const (
	HeaderReplyTo     = "spool_reply_to"
	HeaderReplyStatus = "spool_status"
	ReplyOK           = "ok"
	ReplyError        = "error"
)

// ErrNoReplyTo is returned by Reply for a message that asks for no reply
// (it has no spool_reply_to or no correlation_id header).
var ErrNoReplyTo = errors.New("agent: message has no spool_reply_to and correlation_id headers to reply to")

// Reply answers the command m (one with spool_reply_to and correlation_id
// headers, as the gateway's async commands have) with result, and waits
// for the broker's acknowledgement. result may be:
//
//   - an error: the request fails with its text (spool_status: error);
//   - []byte or json.RawMessage: the value as is;
//   - anything else: its JSON encoding (content-type application/json).
//
// Call it from the handler before returning success: if Reply fails,
// return its error so the command is retried (a repeated reply is
// harmless, a request finishes once). A command the handler dead-letters
// is answered by the agent with the failure.
func Reply(ctx context.Context, m *Message, result any) error {
	if m == nil || m.Record == nil {
		return errors.New("agent: Reply: nil message")
	}
	to, id := header(m.Record, HeaderReplyTo), header(m.Record, event.HeaderCorrelationID)
	if to == "" || id == "" {
		return ErrNoReplyTo
	}
	if m.cl == nil {
		return errors.New("agent: Reply: the message did not come from an agent")
	}
	rec := &kgo.Record{Topic: to, Key: []byte(id), Headers: []kgo.RecordHeader{
		{Key: event.HeaderCorrelationID, Value: []byte(id)},
	}}
	status := ReplyOK
	switch v := result.(type) {
	case error:
		status, rec.Value = ReplyError, []byte(v.Error())
	case json.RawMessage:
		rec.Value = v
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: event.HeaderContentType, Value: []byte("application/json")})
	case []byte:
		rec.Value = v
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("agent: Reply: encode result: %w", err)
		}
		rec.Value = b
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: event.HeaderContentType, Value: []byte("application/json")})
	}
	rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: HeaderReplyStatus, Value: []byte(status)})
	if err := m.cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("agent: reply to %s: %w", to, err)
	}
	return nil
}

// replyDeadLetter answers a dead-lettered command with the failure, if it
// asks for a reply.
func (a *Agent) replyDeadLetter(m *Message, orig *kgo.Record, reason string, cause error) error {
	if header(orig, HeaderReplyTo) == "" || header(orig, event.HeaderCorrelationID) == "" {
		return nil
	}
	msg := "dead-lettered (" + reason + ")"
	var ve *VerdictError
	if errors.As(cause, &ve) && ve.Err != nil {
		cause = ve.Err // the handler's own error, not the verdict's wrapping
	}
	if cause != nil {
		msg += ": " + cause.Error()
	}
	rm := &Message{Event: m.Event, Record: orig, Group: m.Group, cl: a.cl}
	return Reply(a.handlerCtx, rm, errors.New(msg))
}

// orderKey is the key that orders rec among the events of its partition:
// its record key, or for a keyless event with WithCorrelationOrder its
// correlation id (prefixed, so that it is not taken for a record key).
func (a *Agent) orderKey(rec *kgo.Record) string {
	if len(rec.Key) == 0 && a.cfg.correlationKey {
		if id := header(rec, event.HeaderCorrelationID); id != "" {
			return "\x00correlation_id=" + id
		}
	}
	return string(rec.Key)
}

func header(r *kgo.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}
