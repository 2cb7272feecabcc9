package agent

import (
	"errors"
	"fmt"
	"time"
)

// Verdict is what a handler decided about an event. A handler returns it as
// an error: nil is success, Warn, Retry, RetryAfter, DeadLetter and Kill wrap
// an error with a verdict, and any other error gets the default policy.
type Verdict int

// The verdicts. VerdictDefault is an error without a verdict (or a panic).
const (
	VerdictSuccess Verdict = iota
	VerdictWarn
	VerdictRetry
	VerdictDeadLetter
	VerdictKill
	VerdictDefault
)

var verdictNames = [...]string{"success", "warn", "retry", "dead-letter", "kill", "default"}

func (v Verdict) String() string {
	if v >= 0 && int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return fmt.Sprintf("verdict(%d)", int(v))
}

// Sentinels for errors.Is: errors.Is(err, agent.ErrRetry) reports whether err
// carries the retry verdict.
var (
	ErrWarn       = errors.New("agent: warn")
	ErrRetry      = errors.New("agent: retry")
	ErrDeadLetter = errors.New("agent: dead-letter")
	ErrKill       = errors.New("agent: kill")
)

// VerdictError is an error flagged with a verdict. Find it with errors.As.
type VerdictError struct {
	Verdict Verdict
	Delay   time.Duration // RetryAfter's delay; 0 means the configured backoff
	Err     error         // the cause; may be nil
}

func (e *VerdictError) Error() string {
	if e.Err == nil {
		return "agent: " + e.Verdict.String()
	}
	return "agent: " + e.Verdict.String() + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *VerdictError) Unwrap() error { return e.Err }

// Is matches the sentinel of e's verdict.
func (e *VerdictError) Is(target error) bool {
	switch target {
	case ErrWarn:
		return e.Verdict == VerdictWarn
	case ErrRetry:
		return e.Verdict == VerdictRetry
	case ErrDeadLetter:
		return e.Verdict == VerdictDeadLetter
	case ErrKill:
		return e.Verdict == VerdictKill
	}
	return false
}

// Warn flags err as a warning: it is logged with the event's identity and
// counted, and the event counts as handled.
func Warn(err error) error { return &VerdictError{Verdict: VerdictWarn, Err: err} }

// Retry asks for the event to be redelivered after the configured backoff.
// Later events with the same key wait; other keys continue. When the
// attempts are exhausted the exhaustion policy decides (WithOnExhausted).
func Retry(err error) error { return &VerdictError{Verdict: VerdictRetry, Err: err} }

// RetryAfter is Retry with a delay of d instead of the configured backoff.
func RetryAfter(d time.Duration, err error) error {
	return &VerdictError{Verdict: VerdictRetry, Delay: d, Err: err}
}

// DeadLetter sends the event to the dead-letter topic at once (a poison
// message); the event then counts as handled.
func DeadLetter(err error) error { return &VerdictError{Verdict: VerdictDeadLetter, Err: err} }

// Kill stops the agent: no more events are fetched, in-flight handlers finish
// (bounded by WithShutdownTimeout), only finished work is committed (not this
// event), and Run returns an error wrapping ErrKilled and err.
func Kill(err error) error { return &VerdictError{Verdict: VerdictKill, Err: err} }

// VerdictOf classifies a handler's error: nil is VerdictSuccess, a flagged
// error its verdict (the outermost found by errors.As), anything else
// VerdictDefault. The duration is RetryAfter's delay.
func VerdictOf(err error) (Verdict, time.Duration) {
	if err == nil {
		return VerdictSuccess, 0
	}
	var ve *VerdictError
	if errors.As(err, &ve) {
		return ve.Verdict, ve.Delay
	}
	return VerdictDefault, 0
}

// Errors returned by Run; test with errors.Is.
var (
	// ErrKilled: a handler returned Kill.
	ErrKilled = errors.New("agent: killed by handler")
	// ErrRetriesExhausted: an event used all its attempts and the policy is
	// OnExhaustedHalt.
	ErrRetriesExhausted = errors.New("agent: retries exhausted")
)

// PanicError is the error a recovered handler panic becomes; it gets the
// default policy.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("agent: handler panic: %v", e.Value) }
