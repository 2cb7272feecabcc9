package kafkatest

import (
	"strings"
	"testing"
	"time"

	"github.com/spoolmq/spool/spooltest"
)

// startSpool starts the in-process Spool broker (spooltest.Start, data in
// t.TempDir()) with auto-created topics of 4 partitions and a 100ms
// minimum session timeout (spooltest's default), so SessionTimeout is 1s as
// on kfake. It skips if the broker does not advertise an API the toolkit
// needs.
func startSpool(t testing.TB) []string {
	s := spooltest.Start(t, spooltest.WithPartitions(4))
	addrs := []string{s.Addr()}
	missing, err := Missing(addrs)
	if err != nil {
		t.Fatalf("kafkatest: spool api versions: %v", err)
	}
	if len(missing) > 0 {
		t.Skipf("kafkatest: Spool run skipped: the broker does not serve %s yet", strings.Join(missing, ", "))
	}
	sessionTimeouts.Store(addrs[0], time.Second)
	return addrs
}
