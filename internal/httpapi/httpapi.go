// Package httpapi holds the HTTP conventions every Spool service (gateway,
// lookback, console) shares: JSON bodies, errors as RFC 9457
// application/problem+json with a message a person understands, and request
// bodies decoded with a size limit.
package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"
)

// ProblemType is the media type of an RFC 9457 problem details body.
const ProblemType = "application/problem+json"

// Problem is an RFC 9457 problem details object. Title is the status text;
// Detail says what went wrong in this request and, where it helps, what to
// do about it.
type Problem struct {
	Type     string `json:"type,omitempty"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
}

// Error is an error with the HTTP status it should be answered with. A
// handler returns one (or wraps one) and WriteError turns it into a
// problem+json response.
type Error struct {
	Status int
	Detail string
	// RetryAfter, when positive, is sent as the Retry-After header (for 429
	// and 503).
	RetryAfter time.Duration
	// Err is the cause, kept for errors.Is/As and logs; it is not sent.
	Err error
}

func (e *Error) Error() string { return e.Detail }

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with status and a formatted detail.
func Errorf(status int, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Status: status, Detail: err.Error(), Err: errors.Unwrap(err)}
}

// WriteProblem answers with status and a problem+json body carrying detail.
func WriteProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", ProblemType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(Problem{Title: http.StatusText(status), Status: status, Detail: detail})
}

// WriteError answers with the problem err describes: its *Error status and
// detail if it is or wraps one, 500 with a generic detail otherwise (the
// cause of an unexpected error is for logs, not for callers).
func WriteError(w http.ResponseWriter, err error) {
	var he *Error
	if !errors.As(err, &he) {
		WriteProblem(w, http.StatusInternalServerError, "internal error; the server log has the cause")
		return
	}
	if he.RetryAfter > 0 {
		secs := int((he.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	WriteProblem(w, he.Status, he.Detail)
}

// WriteJSON answers with status and v encoded as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// DecodeJSON decodes r's body, at most maxBytes of it, into v. It refuses
// with an *Error: 415 when the content type is not JSON, 413 when the body
// is larger than maxBytes, 400 when it is not valid JSON for v (unknown
// fields included) or has trailing data.
func DecodeJSON(w http.ResponseWriter, r *http.Request, maxBytes int64, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !isJSONSuffix(mt)) {
			return Errorf(http.StatusUnsupportedMediaType, "content type %q is not supported here; send application/json", ct)
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, maxBytes)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Errorf(http.StatusBadRequest, "request body: unexpected data after the JSON value")
	}
	return nil
}

func isJSONSuffix(mt string) bool {
	return len(mt) > 5 && mt[len(mt)-5:] == "+json"
}

func jsonError(err error, maxBytes int64) error {
	var tooBig *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		return Errorf(http.StatusRequestEntityTooLarge, "request body is larger than the limit of %d bytes", maxBytes)
	case errors.Is(err, io.EOF):
		return Errorf(http.StatusBadRequest, "request body is empty; send a JSON value")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Errorf(http.StatusBadRequest, "request body is not valid JSON: it ends before the value is complete")
	case errors.As(err, &syntax):
		return Errorf(http.StatusBadRequest, "request body is not valid JSON at byte %d: %v", syntax.Offset, err)
	case errors.As(err, &typ):
		return Errorf(http.StatusBadRequest, "request body: field %q must be %v, got JSON %s", typ.Field, typ.Type, typ.Value)
	default:
		return Errorf(http.StatusBadRequest, "request body: %v", err)
	}
}
