//go:build !linux

package freeport

import "net"

// reserve returns a port that was free a moment ago: without Linux's
// bound-but-not-listening reservation, nothing holds it.
func reserve() (int, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, nil, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, func() {}, nil
}
