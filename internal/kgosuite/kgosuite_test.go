package kgosuite

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spoolmq/spool/internal/testenv"
)

// skipped are the kgo tests that need a feature Spool does not have yet,
// with the reason. Everything else in pkg/kgo must pass.
var skipped = map[string]string{
	"TestTxnEtl": "transactions (transactional produce, read_committed, EndTxn) are not implemented yet",
}

// runTimeout bounds the whole franz-go run (its own -timeout is a little
// shorter, so a hung test is reported by name).
const runTimeout = 10 * time.Minute

func TestFranzGoKgoSuite(t *testing.T) {
	if os.Getenv("SPOOL_KGO_SUITE") != "1" {
		t.Skip("franz-go's pkg/kgo suite against spool serve takes ~90s; run it with SPOOL_KGO_SUITE=1 (.ci/run does)")
	}
	goBin := testenv.LookPath(t, "go", "install Go")
	root := moduleRoot(t, goBin)
	dir := t.TempDir()

	bin := filepath.Join(dir, "spool")
	if out, err := exec.Command(goBin, "build", "-o", bin, filepath.Join(root, "cmd", "spool")).CombinedOutput(); err != nil {
		t.Fatalf("build spool: %v\n%s", err, out)
	}
	addr := serve(t, bin, filepath.Join(dir, "data"))

	names := slices.Sorted(func(yield func(string) bool) {
		for n := range skipped {
			if !yield(n) {
				return
			}
		}
	})
	for _, n := range names {
		t.Logf("skipped by name: %s: %s", n, skipped[n])
	}
	records := os.Getenv("KGO_TEST_RECORDS")
	if records == "" {
		records = "20000"
	}
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "test", "-count=1", "-v", "-timeout", (runTimeout - 30*time.Second).String(),
		"-skip", "^("+strings.Join(names, "|")+")$", "github.com/twmb/franz-go/pkg/kgo")
	cmd.Dir = root // the franz-go version of Spool's go.mod
	cmd.Env = append(os.Environ(), "KGO_SEEDS="+addr, "KGO_TEST_RF=1", "KGO_TEST_RECORDS="+records)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("franz-go pkg/kgo against spool serve: %v, exit %v", time.Since(start).Round(time.Second), err)

	results := map[string][]string{}
	for _, m := range resultLine.FindAllStringSubmatch(out.String(), -1) {
		results[m[1]] = append(results[m[1]], m[2])
	}
	t.Logf("top-level and subtests: %d passed, %d skipped (by the suite itself, e.g. KIP-848 and share groups, which Spool does not advertise), %d failed",
		len(results["PASS"]), len(results["SKIP"]), len(results["FAIL"]))
	if err != nil || len(results["FAIL"]) > 0 {
		log := filepath.Join(dir, "kgo.log")
		os.WriteFile(log, out.Bytes(), 0o644)
		t.Fatalf("franz-go's kgo tests failed against spool serve (%v): %v\n(the full log was in %s)\n%s", err, results["FAIL"], log, tail(out.Bytes(), 150))
	}
	// The run must have exercised the broker, not just unit tests.
	for _, want := range []string{"TestGroupETL", "TestConsumeRegex", "TestIssue325", "TestClient_Produce"} {
		if !slices.Contains(results["PASS"], want) {
			t.Errorf("%s did not pass (passed: %d tests)", want, len(results["PASS"]))
		}
	}
}

var resultLine = regexp.MustCompile(`(?m)^\s*--- (PASS|FAIL|SKIP): (\S+)`)

// serve starts `spool serve` on a free port with its defaults otherwise and
// returns the address it listens on; the test's cleanup stops it (SIGTERM,
// a clean shutdown).
func serve(t *testing.T, bin, data string) string {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--data", data, "--listen", "127.0.0.1:0", "--http", "", "--log-level", "warn")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("spool serve exited with %v\n%s", err, tail(stderr.Bytes(), 50))
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Errorf("spool serve did not stop within 30s of SIGTERM")
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		done <- cmd.Wait()
	}()
	select {
	case a := <-addr:
		return a
	case err := <-done:
		done <- err
		t.Fatalf("spool serve exited before listening: %v\n%s", err, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("spool serve did not print its listener within 30s\n%s", stderr.String())
	}
	return ""
}

var listening = regexp.MustCompile(`kafka listener on (\S+)`)

func moduleRoot(t *testing.T, goBin string) string {
	t.Helper()
	out, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		t.Fatalf("go env GOMOD: %v %q", err, out)
	}
	return filepath.Dir(string(bytes.TrimSpace(out)))
}

func tail(b []byte, lines int) string {
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return fmt.Sprintln(strings.Join(ls, "\n"))
}
