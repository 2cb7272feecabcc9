package lookbackprom_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spoolmq/spool/lookback"
	"github.com/spoolmq/spool/lookback/lookbackprom"
)

func TestHooks(t *testing.T) {
	reg := prometheus.NewRegistry()
	h, err := lookbackprom.New(reg, []lookback.Rule{{Name: "quiet"}})
	if err != nil {
		t.Fatal(err)
	}
	h.Archived(10, 1000, time.Millisecond)
	h.StoreFailed(nil)
	h.RuleChecked("pay", false)
	h.RuleChecked("pay", true)
	h.RuleHoles("pay", 1)
	want := `
# HELP spool_lookback_rule_checked_total Rule expectations settled: met in time or missed.
# TYPE spool_lookback_rule_checked_total counter
spool_lookback_rule_checked_total{rule="pay"} 2
spool_lookback_rule_checked_total{rule="quiet"} 0
# HELP spool_lookback_rule_violations Open holes per rule: expectations missed and not completed since.
# TYPE spool_lookback_rule_violations gauge
spool_lookback_rule_violations{rule="pay"} 1
spool_lookback_rule_violations{rule="quiet"} 0
# HELP spool_lookback_archived_events_total Events archived (durable in the store).
# TYPE spool_lookback_archived_events_total counter
spool_lookback_archived_events_total 10
# HELP spool_lookback_store_errors_total Failed store writes; ingestion waits and retries them.
# TYPE spool_lookback_store_errors_total counter
spool_lookback_store_errors_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "spool_lookback_rule_checked_total",
		"spool_lookback_rule_violations", "spool_lookback_archived_events_total", "spool_lookback_store_errors_total"); err != nil {
		t.Fatal(err)
	}
}
