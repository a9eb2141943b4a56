package tlsproxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, hostport string
		want              bool
	}{
		{"*.vault.azure.net:443", "contoso.vault.azure.net:443", true},
		{"*.vault.azure.net:443", "CONTOSO.Vault.Azure.Net:443", true},
		{"*.vault.azure.net:443", "a.b.vault.azure.net:443", true},
		{"*.vault.azure.net:443", "vault.azure.net:443", false},
		{"*.vault.azure.net:443", "contoso.vault.azure.net:80", false},
		{"*.vault.azure.net:443", "contoso.vault.azure.net.evil.com:443", false},
		{"*.vault.azure.net:443", "evilvault.azure.net:443", false},
		{"graph.microsoft.com:443", "graph.microsoft.com:443", true},
		{"graph.microsoft.com:443", "x.graph.microsoft.com:443", false},
		{"graph.microsoft.com:443", "graph.microsoft.com", false},
	} {
		if got := Match(c.pattern, c.hostport); got != c.want {
			t.Errorf("Match(%q, %q) = %v", c.pattern, c.hostport, got)
		}
	}
}

func FuzzMatch(f *testing.F) {
	f.Add("contoso.vault.azure.net:443")
	f.Add(".vault.azure.net:443")
	f.Fuzz(func(t *testing.T, hp string) {
		if Match("*.vault.azure.net:443", hp) {
			h, p, err := net.SplitHostPort(strings.ToLower(hp))
			if err != nil || p != "443" || !strings.HasSuffix(h, ".vault.azure.net") || strings.HasPrefix(h, ".") {
				t.Fatalf("%q matched", hp)
			}
		}
	})
}

// A routed CONNECT is tunnelled byte for byte; any other is refused and recorded.
func TestTunnel(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	p, err := Start(Route{Pattern: "*.example.test:443", Target: echo.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	connect := func(target string) (net.Conn, *http.Response) {
		c, err := net.Dial("tcp", strings.TrimPrefix(p.URL(), "http://"))
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\nhello")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		return &bufConn{Conn: c, r: br}, resp
	}
	c, resp := connect("a.example.test:443")
	if resp.StatusCode != 200 {
		t.Fatalf("routed: %d", resp.StatusCode)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("echo: %q %v", buf, err)
	}
	c.Close()
	c, resp = connect("login.microsoftonline.com:443")
	c.Close()
	if resp.StatusCode != 403 || p.Tunnels("a.example.test:443") != 1 || len(p.Refused()) != 1 {
		t.Fatalf("unrouted: %d, tunnels %d, refused %v", resp.StatusCode, p.Tunnels("a.example.test:443"), p.Refused())
	}
}

type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }
