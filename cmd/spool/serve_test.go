package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/storage"
)

func parseServe(t *testing.T, args []string, env map[string]string) (*serveFlags, error) {
	t.Helper()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	f := bindServeFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	return f, applyEnv(fs, lookup)
}

func TestServeFlagsAndEnv(t *testing.T) {
	// Defaults.
	f, err := parseServe(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := f.config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "./spool-data" || cfg.Listen != "127.0.0.1:9092" || cfg.Fsync != storage.FsyncAlways ||
		cfg.DisableAutoCreateTopics || cfg.DefaultPartitions != 1 || cfg.MaxFrameBytes != 100<<20 || f.http != "127.0.0.1:8080" ||
		cfg.GroupMinSessionTimeout != 6*time.Second || cfg.GroupMaxSessionTimeout != 30*time.Minute ||
		cfg.FsyncInterval != 50*time.Millisecond || cfg.LogRetention != 7*24*time.Hour || cfg.LogRetentionBytes != -1 ||
		cfg.LogSegmentBytes != 1<<30 || cfg.MaxMessageBytes != 1048588 || cfg.GroupInitialRebalanceDelay != 3*time.Second {
		t.Fatalf("defaults: %+v http %q", cfg, f.http)
	}

	// The broker-wide topic defaults and the group delay, as flags.
	f, err = parseServe(t, []string{"--log-retention-ms", "-1", "--log-retention-bytes", "5000", "--log-segment-bytes", "4096",
		"--message-max-bytes", "777", "--fsync-interval", "5ms", "--group-initial-rebalance-delay", "0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err = f.config(); err != nil {
		t.Fatal(err)
	}
	if cfg.LogRetention >= 0 || cfg.LogRetentionBytes != 5000 || cfg.LogSegmentBytes != 4096 || cfg.MaxMessageBytes != 777 ||
		cfg.FsyncInterval != 5*time.Millisecond || cfg.GroupInitialRebalanceDelay >= 0 {
		t.Fatalf("topic default flags: %+v", cfg)
	}

	// The commit log's flags reach the broker's config.
	f, err = parseServe(t, []string{"--commit-log-max-batch", "1024", "--commit-log-rounds-in-flight", "1",
		"--commit-log-file-bytes", "1048576", "--commit-log-share-window", "-1ns"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err = f.config(); err != nil {
		t.Fatal(err)
	}
	if cfg.CommitLogMaxBatch != 1024 || cfg.CommitLogRoundsInFlight != 1 || cfg.CommitLogFileBytes != 1<<20 || cfg.CommitLogShareWindow >= 0 {
		t.Fatalf("commit log flags: %+v", cfg)
	}

	// Environment sets what flags do not; flags win.
	env := map[string]string{
		"SPOOL_DATA": "/env/data", "SPOOL_LISTEN": "0.0.0.0:9999", "SPOOL_ADVERTISE": "kafka.example:9999",
		"SPOOL_HTTP": "", "SPOOL_FSYNC": "interval", "SPOOL_AUTO_CREATE_TOPICS": "false",
		"SPOOL_DEFAULT_PARTITIONS": "6", "SPOOL_MAX_FRAME_BYTES": "2048",
		"SPOOL_GROUP_MIN_SESSION_TIMEOUT": "250ms", "SPOOL_GROUP_MAX_SESSION_TIMEOUT": "1m",
	}
	f, err = parseServe(t, []string{"--fsync", "never", "--data", "/flag/data"}, env)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err = f.config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/flag/data" || cfg.Fsync != storage.FsyncNever {
		t.Errorf("flags did not win over env: data %q fsync %v", cfg.DataDir, cfg.Fsync)
	}
	if cfg.Listen != "0.0.0.0:9999" || cfg.Advertise != "kafka.example:9999" || f.http != "" ||
		!cfg.DisableAutoCreateTopics || cfg.DefaultPartitions != 6 || cfg.MaxFrameBytes != 2048 ||
		cfg.GroupMinSessionTimeout != 250*time.Millisecond || cfg.GroupMaxSessionTimeout != time.Minute {
		t.Errorf("env not applied: %+v http %q", cfg, f.http)
	}

	// The limits against hostile clients are flags too.
	f, err = parseServe(t, []string{"--max-connections", "7", "--max-connections-per-ip", "3", "--queued-max-request-bytes", "200000000",
		"--conn-queued-max-bytes", "150000000", "--idle-timeout", "1m", "--frame-timeout", "5s", "--max-fetch-bytes", "5000",
		"--group-max-size", "9", "--max-decompressed-bytes", "2000000"}, nil)
	if err == nil {
		cfg, err = f.config()
	}
	if err != nil || cfg.MaxConnections != 7 || cfg.MaxConnectionsPerIP != 3 || cfg.QueuedMaxRequestBytes != 200000000 ||
		cfg.ConnQueuedMaxBytes != 150000000 || cfg.IdleTimeout != time.Minute || cfg.FrameTimeout != 5*time.Second ||
		cfg.MaxFetchBytes != 5000 || cfg.GroupMaxSize != 9 || cfg.MaxDecompressedBytes != 2000000 {
		t.Errorf("limit flags not applied: %v %+v", err, cfg)
	}

	// Bad values, from flags or env, are clear errors.
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--fsync", "sometimes"}, nil, "--fsync"},
		{nil, map[string]string{"SPOOL_FSYNC": "sometimes"}, "--fsync"},
		{nil, map[string]string{"SPOOL_DEFAULT_PARTITIONS": "many"}, "SPOOL_DEFAULT_PARTITIONS"},
		{nil, map[string]string{"SPOOL_AUTO_CREATE_TOPICS": "perhaps"}, "SPOOL_AUTO_CREATE_TOPICS"},
		{[]string{"--default-partitions", "0"}, nil, "DefaultPartitions"},
		{[]string{"--listen", "nonsense"}, nil, "Listen"},
		{[]string{"--advertise", "host:0"}, nil, "Advertise"},
		{[]string{"--http", "nonsense"}, nil, "--http"},
		{[]string{"--log-level", "loud"}, nil, "--log-level"},
		{[]string{"--group-min-session-timeout", "0s"}, nil, "--group-min-session-timeout"},
		{nil, map[string]string{"SPOOL_GROUP_MAX_SESSION_TIMEOUT": "soon"}, "SPOOL_GROUP_MAX_SESSION_TIMEOUT"},
		{[]string{"--group-min-session-timeout", "1m", "--group-max-session-timeout", "10s"}, nil, "group session timeouts"},
		{[]string{"--log-retention-ms", "0"}, nil, "--log-retention-ms"},
		{[]string{"--log-retention-bytes", "0"}, nil, "--log-retention-bytes"},
		{[]string{"--log-segment-bytes", "14"}, nil, "--log-segment-bytes"},
		{[]string{"--message-max-bytes", "0"}, nil, "--message-max-bytes"},
		{[]string{"--fsync-interval", "0s"}, nil, "--fsync-interval"},
		{nil, map[string]string{"SPOOL_GROUP_INITIAL_REBALANCE_DELAY": "-1s"}, "--group-initial-rebalance-delay"},
		{[]string{"--max-connections", "0"}, nil, "--max-connections"},
		{nil, map[string]string{"SPOOL_MAX_CONNECTIONS_PER_IP": "-1"}, "--max-connections-per-ip"},
		{[]string{"--idle-timeout", "0s"}, nil, "--idle-timeout"},
		{[]string{"--queued-max-request-bytes", "4096"}, nil, "QueuedMaxRequestBytes"},
		{[]string{"--max-fetch-bytes", "0"}, nil, "--max-fetch-bytes"},
		{[]string{"--group-max-size", "0"}, nil, "--group-max-size"},
	} {
		f, err := parseServe(t, c.args, c.env)
		if err == nil {
			_, err = f.config()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("args %v env %v: error %v, want one mentioning %q", c.args, c.env, err, c.want)
		}
	}
}

func TestServeStartStop(t *testing.T) {
	dir := t.TempDir()
	addr, out := runServeCmd(t, dir)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "served", Value: []byte("kept")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	cl.Close()
	httpAddr := out.httpAddr
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "spool_broker_produced_records_total 1") {
		t.Fatalf("/metrics lacks the produced record count:\n%.2000s", body)
	}
	// The acknowledged produce waited for at least one fsync (--fsync always).
	if n := metricValue(string(body), "spool_storage_fsync_seconds_count"); n < 1 {
		t.Fatalf("spool_storage_fsync_seconds_count = %v after an acknowledged produce, want >= 1", n)
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/debug/pprof/": 404} {
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	if err := out.stop(); err != nil {
		t.Fatalf("serve after cancel: %v, want a clean exit", err)
	}

	// Started again on the same data directory, the record is still there.
	addr, out = runServeCmd(t, dir)
	defer out.stop()
	cl, err = kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("served"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	fs := cl.PollFetches(ctx)
	if err := ctx.Err(); err != nil || len(fs.Records()) != 1 || string(fs.Records()[0].Value) != "kept" {
		t.Fatalf("after restart: %v %v", err, fs.Records())
	}
}

type runningServe struct {
	httpAddr  string
	listeners map[string]string // NAME -> address, with several --listener
	cancel    context.CancelFunc
	done      chan error
}

// stop cancels serve's context (what SIGINT/SIGTERM do) and returns its
// result.
func (r *runningServe) stop() error {
	r.cancel()
	select {
	case err := <-r.done:
		return err
	case <-time.After(20 * time.Second):
		return errors.New("serve did not return within 20s of cancel")
	}
}

// runServeCmd runs `spool serve` on free ports and returns the Kafka address
// it printed.
func runServeCmd(t *testing.T, dir string, extra ...string) (string, *runningServe) {
	t.Helper()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningServe{cancel: cancel, done: make(chan error, 1)}
	root := newRootCmd()
	root.SetOut(pw)
	root.SetErr(io.Discard)
	root.SetArgs(append([]string{"serve", "--data", dir, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--log-level", "error"}, extra...))
	go func() {
		err := root.ExecuteContext(ctx)
		pw.Close()
		r.done <- err
	}()
	kafkaRe := regexp.MustCompile(`kafka listener on (\S+)`)
	httpRe := regexp.MustCompile(`http listener on (\S+)`)
	listenerRe := regexp.MustCompile(`listener (\S+) \(\S+\) on (\S+)`)
	r.listeners = map[string]string{}
	sc := bufio.NewScanner(pr)
	var addr string
	for sc.Scan() {
		if m := kafkaRe.FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
		}
		if m := listenerRe.FindStringSubmatch(sc.Text()); m != nil {
			r.listeners[m[1]] = m[2]
		}
		if m := httpRe.FindStringSubmatch(sc.Text()); m != nil {
			r.httpAddr = m[1]
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if addr == "" || r.httpAddr == "" {
		cancel()
		t.Fatalf("serve did not print its addresses: %v", <-r.done)
	}
	return addr, r
}

// metricValue returns the value of the unlabelled sample name in a
// Prometheus text exposition, or -1 if it is absent.
func metricValue(body, name string) float64 {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return -1
			}
			return f
		}
	}
	return -1
}

// A second `spool serve` on a data directory that one is already serving
// exits with an error that says so, and leaves the first one running.
func TestServeRefusesLockedDataDir(t *testing.T) {
	dir := t.TempDir()
	addr, first := runServeCmd(t, dir)
	defer first.stop()
	root := newRootCmd()
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	root.SetArgs([]string{"serve", "--data", dir, "--listen", "127.0.0.1:0", "--http", "", "--log-level", "error"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	if err == nil || !strings.Contains(err.Error(), "another spool serve is running on this data directory") {
		t.Fatalf("second serve on %s: %v, want the data-directory lock error", dir, err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "still-served", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("first serve after the refused second one: %v", err)
	}
}

// `spool serve` on a data directory whose metadata was lost exits with the
// remedy; `--recover-metadata` brings the topic back with its records.
func TestServeRecoverMetadata(t *testing.T) {
	dir := t.TempDir()
	addr, out := runServeCmd(t, dir)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "precious", Value: []byte("kept")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	cl.Close()
	if err := out.stop(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "broker-meta.json")); err != nil {
		t.Fatal(err)
	}
	root := newRootCmd()
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	root.SetArgs([]string{"serve", "--data", dir, "--listen", "127.0.0.1:0", "--http", "", "--log-level", "error"})
	if err := root.ExecuteContext(ctx); err == nil || !strings.Contains(err.Error(), "start once with --recover-metadata") {
		t.Fatalf("serve without metadata: %v, want the --recover-metadata remedy", err)
	}
	addr, out = runServeCmd(t, dir, "--recover-metadata")
	defer out.stop()
	cl, err = kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("precious"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	fs := cl.PollFetches(ctx)
	if err := ctx.Err(); err != nil || len(fs.Records()) != 1 || string(fs.Records()[0].Value) != "kept" {
		t.Fatalf("after --recover-metadata: %v %v", err, fs.Records())
	}
}

func TestReadiness(t *testing.T) {
	var r readiness
	for _, c := range []struct {
		set  func()
		want int
	}{{func() {}, 503}, {r.setReady, 200}, {r.setStopping, 503}} {
		c.set()
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
		if w.Code != c.want {
			t.Fatalf("readyz = %d, want %d (%s)", w.Code, c.want, w.Body)
		}
	}
}

func TestServeConfigFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "spool.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	parse := func(args []string, env map[string]string) (*serveFlags, error) {
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		f := bindServeFlags(fs)
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if err := applyEnv(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
			return nil, err
		}
		return f, applyConfigFile(fs, path)
	}

	write("data: /file/data\nfsync: interval\ndefault-partitions: 3\nhttp: null\nlog-format: json\n")
	f, err := parse([]string{"--fsync", "never"}, map[string]string{"SPOOL_DEFAULT_PARTITIONS": "5"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := f.config()
	if err != nil {
		t.Fatal(err)
	}
	// The file sets what nothing else does; env and flags win over it.
	if cfg.DataDir != "/file/data" || f.http != "" || f.logFormat != "json" {
		t.Errorf("file not applied: data %q http %q log-format %q", cfg.DataDir, f.http, f.logFormat)
	}
	if cfg.Fsync != storage.FsyncNever || cfg.DefaultPartitions != 5 {
		t.Errorf("flag/env did not win over the file: fsync %v partitions %d", cfg.Fsync, cfg.DefaultPartitions)
	}

	for _, c := range []struct{ file, want string }{
		{"dta: /typo\n", `unknown key "dta"`},
		{"default-partitions: many\n", "default-partitions"},
		{"- a list\n", "not a YAML mapping"},
	} {
		write(c.file)
		if _, err := parse(nil, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("file %q: error %v, want one mentioning %q", c.file, err, c.want)
		}
	}
	if err := applyConfigFile(pflag.NewFlagSet("x", pflag.ContinueOnError), filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("a missing config file was accepted")
	}
}

func TestServeLogFormat(t *testing.T) {
	var buf strings.Builder
	l, err := newLogger(&buf, "json", slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hello", "topic", "orders")
	var line map[string]any
	if err := json.Unmarshal([]byte(buf.String()), &line); err != nil || line["msg"] != "hello" || line["topic"] != "orders" {
		t.Fatalf("json log line %q: %v", buf.String(), err)
	}
	if _, err := newLogger(&buf, "xml", slog.LevelInfo); err == nil || !strings.Contains(err.Error(), "--log-format") {
		t.Fatalf("--log-format xml: %v", err)
	}
}

func TestServeMuxPprof(t *testing.T) {
	var r readiness
	for _, on := range []bool{false, true} {
		mux := newServeMux(prometheus.NewRegistry(), &r, httpOptions{pprof: on})
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", "/debug/pprof/", nil))
		if got := w.Code == 200; got != on {
			t.Errorf("--pprof=%v: GET /debug/pprof/ = %d", on, w.Code)
		}
	}
}
