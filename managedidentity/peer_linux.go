package managedidentity

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// peerUID returns the user owning the client end of a loopback TCP connection: the
// socket whose local address is remote and whose peer is local, as /proc/net/tcp and
// /proc/net/tcp6 list it. ok is false when it cannot be told.
func peerUID(local, remote netip.AddrPort) (uid int, ok bool) {
	want := procAddr(remote) + " " + procAddr(local)
	files := []string{"/proc/net/tcp", "/proc/net/tcp6"}
	if remote.Addr().Is6() && !remote.Addr().Is4In6() {
		files = files[1:]
	}
	for _, f := range files {
		if uid, ok := findUID(f, want); ok {
			return uid, true
		}
	}
	return 0, false
}

func findUID(file, want string) (int, bool) {
	f, err := os.Open(file)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid ...
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 || fields[1]+" "+fields[2] != want {
			continue
		}
		uid, err := strconv.Atoi(fields[7])
		return uid, err == nil
	}
	return 0, false
}

// procAddr writes an address the way /proc/net/tcp does: the address as 32-bit words
// in the machine's byte order, in hex, then the port.
func procAddr(ap netip.AddrPort) string {
	var b strings.Builder
	addr := ap.Addr()
	if addr.Is4In6() {
		addr = addr.Unmap()
	}
	raw := addr.AsSlice()
	for i := 0; i+4 <= len(raw); i += 4 {
		fmt.Fprintf(&b, "%08X", binary.NativeEndian.Uint32(raw[i:i+4]))
	}
	fmt.Fprintf(&b, ":%04X", ap.Port())
	return b.String()
}
