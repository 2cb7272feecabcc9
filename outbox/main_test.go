package outbox_test

import (
	"os"
	"testing"

	"github.com/spoolmq/spool/internal/spoolproc"
)

// TestMain removes the spool binary TestCrash built.
func TestMain(m *testing.M) {
	code := m.Run()
	spoolproc.Cleanup()
	os.Exit(code)
}
