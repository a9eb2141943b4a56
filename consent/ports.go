package consent

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// DefaultPortRange is the range partner documentation tells users to register as
// redirect URIs, so the helper scans it unless told otherwise.
const DefaultPortRange = "8400-8999"

// PortRange is an inclusive range of TCP ports for the loopback listener.
type PortRange struct{ First, Last int }

// ParsePortRange reads "FIRST-LAST" or a single "PORT".
func ParsePortRange(s string) (PortRange, error) {
	first, last, isRange := strings.Cut(strings.TrimSpace(s), "-")
	if !isRange {
		last = first
	}
	r := PortRange{parsePort(first), parsePort(last)}
	if err := r.validate(); err != nil {
		return PortRange{}, fmt.Errorf("invalid port range %q: want PORT or FIRST-LAST within 1-65535, e.g. %s", s, DefaultPortRange)
	}
	return r, nil
}

// parsePort accepts plain decimal digits only; strconv.Atoi alone would also take
// signs, and -1 marks anything else as invalid.
func parsePort(s string) int {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 5 || strings.TrimLeft(s, "0123456789") != "" {
		return -1
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

func (r PortRange) validate() error {
	if r.First < 1 || r.Last > 65535 || r.First > r.Last {
		return fmt.Errorf("invalid port range %s", r)
	}
	return nil
}

// String gives the range in the form ParsePortRange reads.
func (r PortRange) String() string {
	if r.First == r.Last {
		return strconv.Itoa(r.First)
	}
	return strconv.Itoa(r.First) + "-" + strconv.Itoa(r.Last)
}

// UnmarshalText lets flag parsers (kong) fill a PortRange directly.
func (r *PortRange) UnmarshalText(b []byte) error {
	p, err := ParsePortRange(string(b))
	if err != nil {
		return err
	}
	*r = p
	return nil
}

// MarshalText is the inverse of UnmarshalText.
func (r PortRange) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// bindLoopback binds port on 127.0.0.1 and, when the machine has IPv6 loopback, on
// [::1] as well. The redirect URI says "localhost", which browsers may resolve to ::1
// first; holding both addresses means the redirect cannot land in some other program
// that listens on [::1] with the same port (Node's dev servers do exactly that).
func bindLoopback(port int, ipv6 bool) ([]net.Listener, error) {
	p := strconv.Itoa(port)
	v4, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", p))
	if err != nil {
		return nil, err
	}
	if !ipv6 {
		return []net.Listener{v4}, nil
	}
	v6, err := net.Listen("tcp6", net.JoinHostPort("::1", p))
	if err != nil {
		v4.Close()
		return nil, err
	}
	return []net.Listener{v4, v6}, nil
}

// hasIPv6Loopback reports whether [::1] can be bound at all, so that a machine
// without IPv6 is not mistaken for one whose every port is taken on [::1].
func hasIPv6Loopback() bool {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}
