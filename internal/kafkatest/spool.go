package kafkatest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/spooltest"
)

// startSpool starts the in-process Spool broker (spooltest.Start, data in
// t.TempDir()) with auto-created topics of 4 partitions and a 100ms
// minimum session timeout (spooltest's default), so SessionTimeout is 1s as
// on kfake. It fails t if the broker does not advertise an API the toolkit
// needs: a Spool run that skipped would hide the gap it should show.
func startSpool(t testing.TB) []string { return startSpoolAt(t, "127.0.0.1:0") }

func startSpoolAt(t testing.TB, addr string) []string {
	s := spooltest.Start(t, spooltest.WithPartitions(4),
		spooltest.WithConfig(func(c *broker.Config) { c.Listen = addr }))
	addrs := []string{s.Addr()}
	requireAPIs(t, "Spool", addrs)
	sessionTimeouts.Store(addrs[0], time.Second)
	return addrs
}

// requireAPIs fails t unless the broker at addrs serves every Needed API.
func requireAPIs(t testing.TB, name string, addrs []string) {
	t.Helper()
	missing, err := Missing(addrs)
	if err != nil {
		t.Fatalf("kafkatest: %s api versions: %v", name, err)
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		t.Fatalf("kafkatest: the %s broker does not serve %s, which the toolkit needs", name, strings.Join(missing, ", "))
	}
}
