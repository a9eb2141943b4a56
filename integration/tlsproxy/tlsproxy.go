// Package tlsproxy is a small HTTP CONNECT proxy for tests: named in HTTPS_PROXY, it
// lets a real client reach a real host name (e.g. contoso.vault.azure.net or
// graph.microsoft.com) served by a local simulator, with every TLS check of the client
// left on: the client dials the proxy, asks it to CONNECT to host:443, and the proxy
// tunnels the bytes to the simulator's loopback address, which presents a certificate
// for the host name from a test CA the client trusts (SSL_CERT_FILE).
//
// Only the routes given are tunnelled; any other CONNECT is refused with 403 and
// counted, so a test also proves that nothing else was reached. Plain-http proxying
// is not offered.
package tlsproxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Route sends CONNECTs for Pattern to Target. Pattern is "host:port" or "*.domain:port"
// (one or more labels before the domain), compared without regard to case.
type Route struct {
	Pattern string
	Target  string // a loopback "127.0.0.1:PORT"
}

// Proxy is a running proxy. Its methods are safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	routes []Route

	mu      sync.Mutex
	tunnels map[string]int // by requested host:port
	refused []string
	conns   map[net.Conn]struct{}
	closed  bool
	wg      sync.WaitGroup
}

// Start listens on 127.0.0.1 and serves until Close.
func Start(routes ...Route) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, routes: routes, tunnels: map[string]int{}, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// URL is what HTTPS_PROXY takes: http://127.0.0.1:PORT.
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// Tunnels counts the CONNECTs tunnelled for a requested host:port.
func (p *Proxy) Tunnels(hostport string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tunnels[strings.ToLower(hostport)]
}

// Refused lists the CONNECT targets refused (no route), in order.
func (p *Proxy) Refused() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.refused...)
}

// Close stops listening and cuts every open tunnel.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

// Match reports whether hostport matches pattern (see Route).
func Match(pattern, hostport string) bool {
	pattern, hostport = strings.ToLower(pattern), strings.ToLower(hostport)
	ph, pp, err1 := net.SplitHostPort(pattern)
	hh, hp, err2 := net.SplitHostPort(hostport)
	if err1 != nil || err2 != nil || pp != hp || hh == "" {
		return false
	}
	if domain, ok := strings.CutPrefix(ph, "*."); ok {
		prefix, found := strings.CutSuffix(hh, "."+domain)
		return found && prefix != "" && !strings.HasPrefix(prefix, ".") && !strings.HasSuffix(prefix, ".")
	}
	return ph == hh
}

func (p *Proxy) target(hostport string) (string, bool) {
	for _, r := range p.routes {
		if Match(r.Pattern, hostport) {
			return r.Target, true
		}
	}
	return "", false
}

func (p *Proxy) track(c net.Conn, on bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		if p.closed {
			return false
		}
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
	return true
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c, true) {
			c.Close()
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.track(c, false)
			defer c.Close()
			p.handle(c)
		}()
	}
}

func (p *Proxy) handle(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	if req.Method != http.MethodConnect {
		io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		return
	}
	hostport := strings.ToLower(req.Host)
	target, ok := p.target(hostport)
	if !ok {
		p.mu.Lock()
		p.refused = append(p.refused, hostport)
		p.mu.Unlock()
		io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	up, err := (&net.Dialer{}).DialContext(ctx, "tcp", target)
	cancel()
	if err != nil {
		io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		return
	}
	if !p.track(up, true) {
		up.Close()
		return
	}
	defer p.track(up, false)
	defer up.Close()
	p.mu.Lock()
	p.tunnels[hostport]++
	p.mu.Unlock()
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection Established\r\n\r\n"); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() {
		// Bytes the client sent after its CONNECT (a TLS hello) may sit in br.
		_, _ = io.Copy(up, br)
		closeWrite(up)
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(c, up)
		closeWrite(c)
		done <- struct{}{}
	}()
	<-done
	<-done
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}
