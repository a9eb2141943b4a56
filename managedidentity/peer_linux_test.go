package managedidentity

import (
	"net"
	"net/netip"
	"os"
	"testing"
)

// TestPeerUID: the owner of the client end of a loopback connection is found, for IPv4
// and IPv6, and a connection that does not exist is not.
func TestPeerUID(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		addr := "127.0.0.1:0"
		if network == "tcp6" {
			addr = "[::1]:0"
		}
		ln, err := net.Listen(network, addr)
		if err != nil {
			t.Logf("%s: %v (skipped)", network, err)
			continue
		}
		c, err := net.Dial(network, ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		local := netip.MustParseAddrPort(s.LocalAddr().String())
		remote := netip.MustParseAddrPort(s.RemoteAddr().String())
		if uid, ok := peerUID(local, remote); !ok || uid != os.Getuid() {
			t.Errorf("%s: peerUID = %d, %v; want %d", network, uid, ok, os.Getuid())
		}
		if _, ok := peerUID(local, netip.AddrPortFrom(remote.Addr(), remote.Port()^1)); ok {
			t.Errorf("%s: a connection that does not exist was found", network)
		}
		c.Close()
		s.Close()
		ln.Close()
	}
}
