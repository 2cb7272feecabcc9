package spoolproc

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// TestKillRestart: a started broker accepts connections; after Kill its
// process is gone and nothing answers at its address; Restart brings it
// back on the same address and data directory.
func TestKillRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs spool serve; skipped with -short")
	}
	p := Start(t)
	addr, data := p.Addr(), p.DataDir()
	exited := p.Exited()
	p.Kill()
	select {
	case <-exited:
	default:
		t.Fatal("Kill returned while the process runs")
	}
	if _, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s after Kill: %v, want connection refused", addr, err)
	}
	p.Restart()
	if p.Addr() != addr || p.DataDir() != data {
		t.Fatalf("restarted on %s %s, want %s %s", p.Addr(), p.DataDir(), addr, data)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s after Restart: %v", addr, err)
	}
	c.Close()
	if _, err := os.Stat(data); err != nil {
		t.Fatalf("data directory: %v", err)
	}
}
