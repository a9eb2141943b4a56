// Package idphttp is the transport to the identity provider: it retries transient
// failures within the request's deadline, keeps the provider's metadata documents
// on disk so that a steady-state refresh costs one request, the token POST, and
// (Restrict) holds every request to https on the authority host, refuses redirects,
// and bounds and checks every answer.
//
// Each job is an http.RoundTripper wrapper, composed by wrapping; NewClient builds the
// chain, and entra wraps it with Restrict before handing it to MSAL.
package idphttp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
)

// NewClient returns the *http.Client given to MSAL: the metadata cache in
// metadataDir outermost (none when metadataDir is empty), retries inside it, then a
// clone of http.DefaultTransport, which trusts the system store and honours
// SSL_CERT_FILE, SSL_CERT_DIR and the proxy variables. logf receives diagnostics of
// both layers, unless retry.Logf is set; nil discards them.
//
// The client has no timeout of its own: the request's context bounds each call,
// retries included.
func NewClient(metadataDir string, retry RetryOptions, logf func(string, ...any)) *http.Client {
	var base http.RoundTripper = http.DefaultTransport
	if t, ok := base.(*http.Transport); ok {
		base = t.Clone() // never share connection state with other users of the default
	}
	return newClient(base, metadataDir, retry, logf)
}

func newClient(base http.RoundTripper, metadataDir string, retry RetryOptions, logf func(string, ...any)) *http.Client {
	if retry.Logf == nil {
		retry.Logf = logf
	}
	rt := NewRetryTransport(base, retry)
	if metadataDir != "" {
		rt = NewMetadataTransport(rt, MetadataOptions{Dir: metadataDir, Logf: logf})
	}
	return &http.Client{Transport: rt}
}

// IsTransient reports whether err, as returned by an http.Client or RoundTripper
// (through any %w wrapping, MSAL's included), is a failure to reach the identity
// provider that may pass by itself: a network error such as a refused, reset or
// closed connection or a failed name lookup, an HTTP/2 stream reset by an overloaded
// or failing server, a timeout (TLS handshake, response headers, the context's
// deadline). Certificate and TLS protocol failures are not:
// they need a change of configuration. Nor is a cancelled context, which is the
// caller stopping, not the network failing.
//
// The HTTP statuses worth retrying are told by IsTransientStatus.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
	)
	if errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &record) {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) {
		// A TLS alert from the server (bad certificate, no shared protocol) comes as
		// a "remote error"; trying again gets the same alert.
		return op.Op != "remote error"
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var reset h2StreamError
	if errors.As(err, &reset) {
		switch reset.Code {
		case h2InternalError, h2RefusedStream, h2Cancel, h2EnhanceYourCalm:
			return true
		}
		return false
	}
	// Not net.Error: *url.Error implements it for every failure it wraps.
	var timeout interface{ Timeout() bool }
	if errors.As(err, &timeout) && timeout.Timeout() {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE)
}

// h2StreamError receives an HTTP/2 stream reset from net/http, whose own type is
// unexported: net/http's StreamError converts itself into any struct with these
// field names and types through errors.As, so that x/net/http2.StreamError matches;
// this twin matches too without linking a second HTTP/2 stack into the binary.
type h2StreamError struct {
	StreamID uint32
	Code     uint32
	Cause    error
}

func (e h2StreamError) Error() string {
	return "http2 stream " + strconv.FormatUint(uint64(e.StreamID), 10) + " reset, code " + strconv.FormatUint(uint64(e.Code), 10)
}

// HTTP/2 error codes (RFC 9113 section 7) that a server sends when it is overloaded
// or failing, not because the request was wrong.
const (
	h2InternalError   = 0x2
	h2RefusedStream   = 0x7
	h2Cancel          = 0x8
	h2EnhanceYourCalm = 0xb
)

// IsTransientStatus reports whether an HTTP status from the identity provider means
// "try again later": request timeout, throttling, and the server-side 5xx failures.
// Every other 4xx (invalid_grant, invalid_client, ...) is final.
func IsTransientStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}
