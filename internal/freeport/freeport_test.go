package freeport

import (
	"errors"
	"net"
	"runtime"
	"syscall"
	"testing"
)

// TestReserved: nothing answers at a reserved address, a Go listener binds
// it, and (on Linux) no listener on port 0 and no outgoing connection is
// given a reserved port meanwhile.
func TestReserved(t *testing.T) {
	addr := Addr(t)
	if _, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s before anything listens: %v, want connection refused", addr, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on the reserved %s: %v", addr, err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	defer ln.Close()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s once listening: %v", addr, err)
	}
	c.Close()

	if runtime.GOOS != "linux" {
		t.Skip("reservations hold the port on Linux only")
	}
	reserved := map[int]bool{}
	for range 300 {
		reserved[Port(t)] = true
	}
	for range 3000 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if reserved[p] {
			t.Fatalf("a listener on port 0 got the reserved port %d", p)
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		p = c.LocalAddr().(*net.TCPAddr).Port
		c.Close()
		if reserved[p] {
			t.Fatalf("an outgoing connection got the reserved port %d", p)
		}
	}
}
