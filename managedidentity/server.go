package managedidentity

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// Server is a listener on a loopback address serving a Handler.
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// CheckListenAddr refuses anything but a loopback IP literal and a port: a name such as
// "localhost" may resolve elsewhere, and any other address lets other machines in.
func CheckListenAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid listen address %s: want 127.0.0.1:PORT or [::1]:PORT", quote(addr))
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() || ip.Zone() != "" {
		return fmt.Errorf("listen address %s is not a loopback address: the endpoint listens on 127.0.0.1 or ::1 only", quote(addr))
	}
	if _, err := netip.ParseAddrPort(net.JoinHostPort(host, port)); err != nil {
		return fmt.Errorf("invalid port in listen address %s", quote(addr))
	}
	return nil
}

// Listen opens a loopback listener at addr ("127.0.0.1:0" picks a free port).
func Listen(addr string) (net.Listener, error) {
	if err := CheckListenAddr(addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %s: %w", addr, err)
	}
	return ln, nil
}

// NewServer serves the endpoints on ln. tokenTimeout is the longest an endpoint's
// token request may take; the write timeout leaves room for it.
func NewServer(ln net.Listener, logf func(string, ...any), endpoints ...Endpoint) (*Server, error) {
	h, err := NewHandler(ln.Addr().String(), logf, endpoints...)
	if err != nil {
		return nil, err
	}
	longest := 30 * time.Second
	for _, e := range endpoints {
		longest = max(longest, e.Timeout)
	}
	return &Server{ln: ln, srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      longest + 10*time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		// A client that closes early or sends garbage is its own problem; the handler
		// logs what it refuses.
		ErrorLog: log.New(io.Discard, "", 0),
	}}, nil
}

// Addr is the listener's address, "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the endpoint's IDENTITY_ENDPOINT.
func (s *Server) URL(path string) string { return "http://" + s.Addr() + path }

// Serve serves until Close or Shutdown; it returns nil then.
func (s *Server) Serve() error {
	err := s.srv.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops listening at once and waits for requests in flight until ctx ends,
// then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	return err
}

// Close stops listening and drops every connection.
func (s *Server) Close() error { return s.srv.Close() }
