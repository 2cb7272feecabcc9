// Package spoolproc runs `spool serve` as a child process of a test, for
// crash tests that kill the broker with SIGKILL and start it again on the
// same data directory and the same address.
//
// The binary is built from cmd/spool once per test binary, into a
// temporary directory that Cleanup removes (call it from TestMain after
// m.Run). The address is reserved with internal/freeport for the whole
// test, so between a kill and the next start nothing else takes the port.
// Only the Kafka listener runs: no HTTP listener, no lookback archive.
// The process's output (stdout and stderr) goes to the test log if the
// test fails.
package spoolproc

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spoolmq/spool/internal/freeport"
)

// StartTimeout is how long Start waits for the broker to listen.
const StartTimeout = 60 * time.Second

var build struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// Binary returns the path of a spool binary built from this module's
// cmd/spool, building it on the first call of the test binary.
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "spoolproc-")
		if build.err != nil {
			return
		}
		build.bin = filepath.Join(build.dir, "spool")
		out, err := exec.Command("go", "build", "-o", build.bin, "github.com/spoolmq/spool/cmd/spool").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build ./cmd/spool: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatalf("spoolproc: %v", build.err)
	}
	return build.bin
}

// Cleanup removes the binary Binary built, if any. Call it from TestMain
// after m.Run.
func Cleanup() {
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
}

// Proc is a `spool serve` child process.
type Proc struct {
	t     testing.TB
	bin   string
	data  string
	addr  string
	extra []string
	out   *output

	cmd    *exec.Cmd
	exited chan struct{}
}

// Start starts `spool serve` on a fresh data directory (in t.TempDir())
// and a reserved loopback address, with extra flags appended (for example
// "--default-partitions", "4"), and waits until it accepts Kafka
// connections. The process is killed when t ends.
func Start(t testing.TB, extra ...string) *Proc {
	t.Helper()
	p := &Proc{t: t, bin: Binary(t), data: filepath.Join(t.TempDir(), "data"), addr: freeport.Addr(t),
		extra: extra, out: &output{}}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("spool serve output:\n%s", p.out.String())
		}
	})
	p.start()
	return p
}

// Addr is the broker's address, the same at every start.
func (p *Proc) Addr() string { return p.addr }

// DataDir is the broker's data directory.
func (p *Proc) DataDir() string { return p.data }

// Output is everything the process wrote, over all its starts.
func (p *Proc) Output() string { return p.out.String() }

// Exited is closed when the running process ends (killed or not).
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Kill sends SIGKILL to the process and waits until it is gone. It does
// nothing if the process is not running.
func (p *Proc) Kill() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	p.cmd = nil
}

// Restart kills the process if it runs and starts it again on the same
// data directory and address, waiting until it accepts connections.
func (p *Proc) Restart() {
	p.t.Helper()
	p.Kill()
	p.start()
}

func (p *Proc) start() {
	p.t.Helper()
	args := append([]string{"serve", "--data", p.data, "--listen", p.addr, "--http", "", "--lookback=false"}, p.extra...)
	cmd := exec.Command(p.bin, args...)
	ready := p.out.watch("kafka listener on")
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("spoolproc: start spool serve: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	p.cmd, p.exited = cmd, exited
	select {
	case <-ready:
	case <-exited:
		p.cmd = nil
		p.t.Fatalf("spoolproc: spool serve exited before listening (%s):\n%s", cmd.ProcessState, p.out.String())
	case <-time.After(StartTimeout):
		p.Kill()
		p.t.Fatalf("spoolproc: spool serve did not listen on %s within %v:\n%s", p.addr, StartTimeout, p.out.String())
	}
	// The listener line is printed once the listener is bound; a
	// connection confirms it accepts.
	c, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
	if err != nil {
		p.Kill()
		p.t.Fatalf("spoolproc: spool serve said it listens on %s but: %v", p.addr, err)
	}
	c.Close()
}

// output collects a process's output and tells a watcher when a line
// with a given text has been written since the watch began.
type output struct {
	mu    sync.Mutex
	b     bytes.Buffer
	from  int
	text  string
	ready chan struct{}
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.b.Write(p)
	if o.ready != nil && strings.Contains(o.b.String()[o.from:], o.text) {
		close(o.ready)
		o.ready = nil
	}
	return len(p), nil
}

// watch returns a channel closed once text is written after this call.
func (o *output) watch(text string) <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.from, o.text, o.ready = o.b.Len(), text, make(chan struct{})
	return o.ready
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}
