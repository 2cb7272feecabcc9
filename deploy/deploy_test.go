package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.yaml.in/yaml/v3"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/internal/testenv"
	"github.com/spoolmq/spool/spooltest"
)

// TestAlertRules runs `promtool check rules` and `promtool test rules`: the
// rules parse, and each alert fires on the series that should fire it and
// not on those that should not (prometheus/alerts_test.yml).
func TestAlertRules(t *testing.T) {
	promtool := testenv.LookPath(t, "promtool", "apt-get install prometheus (Debian ships promtool in it)")
	for _, args := range [][]string{
		{"check", "rules", "prometheus/alerts.yml"},
		{"test", "rules", "prometheus/alerts_test.yml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// metricRe finds Spool metric names in a PromQL expression; histogram
// series suffixes are folded into the histogram's name.
var metricRe = regexp.MustCompile(`\bspool_[a-z0-9_]+`)

func metricNames(expr string) []string {
	var out []string
	for _, m := range metricRe.FindAllString(expr, -1) {
		for _, suf := range []string{"_bucket", "_count", "_sum"} {
			if s, ok := strings.CutSuffix(m, suf); ok && strings.HasSuffix(s, "_seconds") {
				m = s
			}
		}
		out = append(out, m)
	}
	return out
}

func alertExprs(t *testing.T) []string {
	raw, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Rules []struct {
				Alert, Expr string
			}
		}
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			out = append(out, r.Expr)
		}
	}
	return out
}

func dashboardExprs(t *testing.T) []string {
	raw, err := os.ReadFile("grafana/spool.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string
		Panels []struct {
			Type, Title string
			Targets     []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("grafana/spool.json: %v", err)
	}
	if dash.UID == "" {
		t.Fatal("dashboard has no uid")
	}
	var out []string
	for _, p := range dash.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	return out
}

// TestMetricsDocumented: every metric that the alert rules and the
// dashboard query is documented in docs/metrics.md, and every spool_*
// metric a running broker exports (after some traffic) is documented too,
// so neither the docs nor the dashboards drift from the code.
func TestMetricsDocumented(t *testing.T) {
	raw, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range metricRe.FindAllString(string(raw), -1) {
		documented[m] = true
	}
	used := map[string]string{}
	for _, e := range alertExprs(t) {
		for _, m := range metricNames(e) {
			used[m] = "prometheus/alerts.yml"
		}
	}
	for _, e := range dashboardExprs(t) {
		for _, m := range metricNames(e) {
			used[m] = "grafana/spool.json"
		}
	}
	for m, where := range used {
		if !documented[m] {
			t.Errorf("%s uses %s, which docs/metrics.md does not document", where, m)
		}
	}

	reg := prometheus.NewRegistry()
	srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) { c.Registerer = reg }))
	cl, err := kgo.NewClient(kgo.SeedBrokers(srv.Addr()), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: "t", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, mf := range mfs {
		if n := mf.GetName(); strings.HasPrefix(n, "spool_") && !documented[n] {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("the broker exports metrics docs/metrics.md does not document: %v", missing)
	}
}
