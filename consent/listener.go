// Package consent holds the interactive step's parts that do not depend on MSAL: the
// loopback listener that receives the authorization response, PKCE and state, and the
// browser opener.
package consent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Timeouts of the loopback server. A browser sends its request at once; anything
// slower is a stray client that must not hold the flow or a goroutine.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 30 * time.Second
	// shutdownGrace lets the browser fetch and receive the result page before the
	// server stops.
	shutdownGrace = 3 * time.Second
	// pendingWait bounds how long the result page waits for Finish before it says
	// the terminal will tell; below writeTimeout, so the page is always written.
	pendingWait = 20 * time.Second
)

// Listener is the loopback endpoint the identity provider redirects the browser to.
type Listener struct {
	lns  []net.Listener // 127.0.0.1 first, then [::1] when the machine has it
	port int

	flow *flow
	wg   sync.WaitGroup // the Serve goroutines

	mu     sync.Mutex
	srv    *http.Server // set once Wait starts serving
	closed bool
}

// Listen binds 127.0.0.1 on the first free port of r (and [::1] on the same port
// when IPv6 loopback exists, see bindLoopback). Connections arrive in the kernel's
// backlog until Wait serves them, so none is lost between Listen and Wait.
func Listen(r PortRange) (*Listener, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	ipv6 := hasIPv6Loopback()
	var lastErr error
	for port := r.First; port <= r.Last; port++ {
		lns, err := bindLoopback(port, ipv6)
		if err == nil {
			return &Listener{lns: lns, port: port, flow: newFlow()}, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("no free loopback port in %s (%v); choose another range with --port-range", r, lastErr)
}

// RedirectURI is the redirect URI to send to the identity provider. It has no
// trailing slash because Entra compares redirect URIs exactly with the registration.
func (l *Listener) RedirectURI() string { return "http://localhost:" + strconv.Itoa(l.port) }

// Port is the bound port.
func (l *Listener) Port() int { return l.port }

// Addr is the bound 127.0.0.1 address.
func (l *Listener) Addr() net.Addr { return l.lns[0].Addr() }

// Wait serves until the authorization response for state arrives, and returns its
// code, or an *AuthError when the identity provider reports an error. Requests that
// are not that response (favicon, other paths, a wrong or missing state, a foreign
// Host header, other methods) are answered and ignored. When ctx ends first, the error
// wraps ctx.Err() and the listener is closed.
//
// The browser that delivered the response is sent (303) to the clean path /done, so
// no code or state stays in its address bar or history, and a reload does not send
// the response again. That page shows the outcome the caller reports with Finish;
// until then the listener keeps serving. Wait serves once.
func (l *Listener) Wait(ctx context.Context, state string) (string, error) {
	if state == "" {
		return "", errors.New("wait for sign-in response: empty state")
	}
	results := make(chan result, 1)
	srv := &http.Server{
		Handler:           &redirectHandler{port: l.port, state: state, results: results, flow: l.flow},
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		// Stray clients make net/http log; those lines are noise on the user's stderr.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		return "", errors.New("wait for sign-in response: listener closed")
	case l.srv != nil:
		l.mu.Unlock()
		return "", errors.New("wait for sign-in response: already waited")
	}
	l.srv = srv
	serveErrs := make(chan error, len(l.lns)) // buffered: Serve never blocks once Wait returned
	for _, ln := range l.lns {
		l.wg.Go(func() { serveErrs <- srv.Serve(ln) })
	}
	l.mu.Unlock()

	select {
	case res := <-results:
		return res.code, res.err
	case err := <-serveErrs:
		l.Close()
		if errors.Is(err, http.ErrServerClosed) {
			return "", errors.New("wait for sign-in response: listener closed")
		}
		return "", fmt.Errorf("serve %s: %w", l.RedirectURI(), err)
	case <-ctx.Done():
		l.Close()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return "", fmt.Errorf("consent was not completed within the timeout: no sign-in response reached %s: %w", l.RedirectURI(), ctx.Err())
		}
		return "", fmt.Errorf("consent was cancelled before a sign-in response reached %s: %w", l.RedirectURI(), ctx.Err())
	}
}

// Finish reports what became of the sign-in response Wait returned (the code was
// redeemed, or why not), for the browser's result page, and closes the listener once
// the browser has fetched that page, or after a short grace when it does not.
func (l *Listener) Finish(o Outcome) {
	l.flow.finish(o)
	l.mu.Lock()
	srv := l.srv
	l.mu.Unlock()
	if srv != nil && l.flow.redirected() {
		timer := time.NewTimer(shutdownGrace)
		select {
		case <-l.flow.served:
		case <-timer.C:
		}
		timer.Stop()
	}
	if srv == nil {
		l.Close()
		return
	}
	l.shutdown(srv)
}

// shutdown stops the server gracefully, so the page already being written reaches
// the browser, but never longer than shutdownGrace.
func (l *Listener) shutdown(srv *http.Server) {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.flow.close()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if srv.Shutdown(ctx) != nil {
		srv.Close()
	}
	l.wg.Wait()
}

// Close stops serving and releases the port. It is safe to call more than once and
// concurrently with Wait, which then returns.
func (l *Listener) Close() error {
	l.flow.close()
	l.mu.Lock()
	if l.srv != nil {
		// The server owns the listeners once Serve has them; Close closes both.
		err := l.srv.Close()
		l.closed = true
		l.mu.Unlock()
		l.wg.Wait()
		return err
	}
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	var errs []error
	for _, ln := range l.lns {
		errs = append(errs, ln.Close())
	}
	return errors.Join(errs...)
}
