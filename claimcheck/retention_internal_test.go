package claimcheck

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestRetentionOf: configs a broker may report, including the ones the
// test brokers cannot be given (compaction, values past a Duration).
func TestRetentionOf(t *testing.T) {
	cfgs := func(kv ...string) []kadm.Config {
		var out []kadm.Config
		for i := 0; i < len(kv); i += 2 {
			out = append(out, kadm.Config{Key: kv[i], Value: &kv[i+1]})
		}
		return out
	}
	for name, tc := range map[string]struct {
		cfgs []kadm.Config
		want Retention
		err  string
	}{
		"plain":            {cfgs("retention.ms", "1000", "segment.ms", "500"), Retention{Age: 1500 * time.Millisecond, Topic: "t"}, ""},
		"no segment.ms":    {cfgs("retention.ms", "1000"), Retention{Age: time.Second + 7*24*time.Hour, Topic: "t"}, ""},
		"infinite":         {cfgs("retention.ms", "-1", "segment.ms", "500"), Retention{Forever: true, Topic: "t"}, ""},
		"compacted":        {cfgs("cleanup.policy", "compact", "retention.ms", "1000"), Retention{Forever: true, Topic: "t"}, ""},
		"compact,delete":   {cfgs("cleanup.policy", "compact, delete", "retention.ms", "1000", "segment.ms", "0"), Retention{Age: time.Second, Topic: "t"}, ""},
		"Long.MAX_VALUE":   {cfgs("retention.ms", "9223372036854775807", "segment.ms", "1"), Retention{Forever: true, Topic: "t"}, ""},
		"no retention.ms":  {cfgs("segment.ms", "1"), Retention{}, "did not report retention.ms"},
		"bad retention.ms": {cfgs("retention.ms", "soon"), Retention{}, `retention.ms "soon"`},
		"below -1":         {cfgs("retention.ms", "-2"), Retention{}, `retention.ms "-2"`},
		"bad segment.ms":   {cfgs("retention.ms", "1", "segment.ms", "-5"), Retention{}, `segment.ms "-5"`},
	} {
		got, err := retentionOf("t", tc.cfgs)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), `topic "t"`) {
				t.Errorf("%s: %+v, %v; want an error naming the topic and %q", name, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v, %v; want %+v", name, got, err, tc.want)
		}
	}
}
