package producer

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/storage"
)

// WithSpoolFS puts the spool on fsys instead of the OS file system, for
// crash tests on storage.MemFS.
func WithSpoolFS(fsys storage.FS) Option {
	return func(p *Producer, _ *[]kgo.Opt) { p.spoolFS = fsys }
}

// WithDrainGate makes the drainer take a value from gate before each
// delivery, so a test decides when spooled events may leave.
func WithDrainGate(gate <-chan struct{}) Option {
	return func(p *Producer, _ *[]kgo.Opt) { p.drainGate = gate }
}

// MarkDown makes p consider the broker down, as a publish that timed out
// would, without waiting for one.
func (p *Producer) MarkDown() { p.markDown(errors.New("marked down by the test")) }
