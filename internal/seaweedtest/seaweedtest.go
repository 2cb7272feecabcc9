// Package seaweedtest starts a real S3-compatible server for tests:
// SeaweedFS's `weed server`, built from its Go module by .ci/run. Where
// weed is missing the test skips with a message (and fails under
// SPOOL_REQUIRE_CLIENTS=1, internal/testenv).
package seaweedtest

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/spoolmq/spool/internal/freeport"
	"github.com/spoolmq/spool/internal/testenv"
)

// Start starts a SeaweedFS server (master, volume, filer and S3
// gateway in one process) on free loopback ports with its data in a temp
// dir, and returns the S3 endpoint once it answers. The ports are reserved
// for the test (on Linux; elsewhere another process may take one before
// weed binds it, and weed exits, "address already in use"): a server that
// exits before it answers is started again on new ports, at most three
// times.
func Start(t *testing.T) string {
	t.Helper()
	weed := testenv.LookPath(t, "weed", "SeaweedFS, built from its Go module by .ci/run")
	var last string
	for attempt := 1; attempt <= 3; attempt++ {
		endpoint, log, ok := runSeaweed(t, weed)
		if ok {
			return endpoint
		}
		last = log
		t.Logf("weed attempt %d exited before it answered; starting it again on new ports", attempt)
	}
	t.Fatalf("weed did not start in 3 attempts; last log (tail):\n%s", last)
	return ""
}

// freePorts returns n loopback ports reserved for t (internal/freeport):
// nothing else on the machine takes them before weed binds them.
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	ports := make([]string, n)
	for i := range ports {
		ports[i] = strconv.Itoa(freeport.Port(t))
	}
	return ports
}

// runSeaweed starts weed once and waits until its S3 gateway answers (ok),
// or until it exits (not ok, with the tail of its log). A server that
// neither answers nor exits within 60s fails t.
func runSeaweed(t *testing.T, weed string) (endpoint, log string, ok bool) {
	t.Helper()
	ports := freePorts(t, 10)
	dir := t.TempDir()
	logf, err := os.Create(filepath.Join(dir, "weed.log"))
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(weed, "server", "-dir="+data, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-master.port="+ports[0], "-master.port.grpc="+ports[1],
		"-volume.port="+ports[2], "-volume.port.grpc="+ports[3],
		"-filer", "-filer.port="+ports[4], "-filer.port.grpc="+ports[5],
		"-s3", "-s3.port="+ports[6], "-s3.port.grpc="+ports[7],
		"-s3.port.iceberg="+ports[8], "-s3.port.lance="+ports[9],
		"-metricsPort=0", "-master.volumeSizeLimitMB=64", "-volume.max=8")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start weed: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	tail := func() string {
		b, _ := os.ReadFile(logf.Name())
		return string(b[max(0, len(b)-4000):])
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			if l := tail(); l != "" {
				t.Logf("weed log (tail):\n%s", l)
			}
		}
		logf.Close()
	})
	endpoint = "127.0.0.1:" + ports[6]
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + endpoint + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return endpoint, "", true
			}
		}
		select {
		case <-exited:
			return "", tail(), false
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("weed S3 gateway at %s did not answer within 60s: %v", endpoint, err)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
}
