package agent

import "time"

// WithNow sets the clock that retry topics' not-before times are read
// against, so a test can make a parked event due without waiting for it.
func WithNow(now func() time.Time) Option { return func(c *config) { c.now = now } }
