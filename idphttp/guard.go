package idphttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/redact"
)

// MaxBody bounds every answer read from the identity provider. Entra's token
// answers and error pages are a few kilobytes and its metadata documents a few more;
// an answer larger than this is refused, so that a hostile or broken server cannot
// make the helper hold hundreds of megabytes.
const MaxBody = 1 << 20

// Restrict returns a client that sends c's requests only over https to the
// authority host (scheme, host and port), never follows a redirect, and reads at
// most MaxBody of any answer. Every request to the identity provider may carry a
// refresh token, a client secret, an assertion or a code, so the rule holds for all
// of them, metadata GETs included, and for the endpoints an openid-configuration
// names: a document naming an endpoint elsewhere is refused before anything is sent
// there. A token answer that is not a JSON object with an access token is refused
// as a transient failure.
//
// Refusals are *failure.Error values (configuration for a redirect or a foreign
// endpoint, transient for a malformed, oversized, cut-off or late answer) that MSAL
// wraps with %w, so errors.As finds them under MSAL's own text.
func Restrict(c *http.Client, authorityHost string) (*http.Client, error) {
	origin, err := originOf(authorityHost)
	if err != nil || !strings.HasPrefix(origin, "https://") {
		return nil, failure.Errorf(failure.Configuration, "the authority host %s must be an https URL", redact.Clean(authorityHost))
	}
	if c == nil {
		c = http.DefaultClient
	}
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	return &http.Client{
		Transport: &guard{next: next, origin: origin},
		Timeout:   c.Timeout,
		// The transport already turns every 3xx into an error; this is the backstop.
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			return redirectError(origin, 0, req.URL)
		},
	}, nil
}

type guard struct {
	next   http.RoundTripper
	origin string // https://host:port, lower case, port always written
}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if o, err := originOf(req.URL.String()); err != nil || o != g.origin {
		closeBody(req)
		return nil, failure.Errorf(failure.Configuration,
			"refused to send a request to %s: requests to the identity provider go only over https to the authority host %s (check --authority-host and the identity provider's openid-configuration)",
			shown(req.URL), g.origin)
	}
	resp, err := g.next.RoundTrip(req)
	if err != nil {
		return nil, g.transportError(req.Context(), err)
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		loc, _ := resp.Location()
		drain(resp)
		return nil, redirectError(g.origin, resp.StatusCode, loc)
	}
	if resp.ContentLength > MaxBody {
		drain(resp)
		return nil, g.tooLarge()
	}
	resp.Body = &boundedBody{body: resp.Body, g: g, ctx: req.Context()}
	switch {
	case resp.StatusCode != http.StatusOK:
	case req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, openIDConfigSuffix):
		err = g.checkDocument(resp, "openid-configuration", checkOpenIDConfig)
	case req.Method == http.MethodGet && req.URL.Path == instanceDiscovery:
		err = g.checkDocument(resp, "instance discovery answer", checkInstanceDiscovery)
	case req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/token"):
		err = g.checkDocument(resp, "token answer", checkTokenAnswer)
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// checkDocument reads a 200 answer whole (bounded) and lets check judge it; the
// body is then served from memory.
func (g *guard) checkDocument(resp *http.Response, what string, check func(g *guard, data []byte) error) error {
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if !isJSONObject(data) {
		return failure.Errorf(failure.Transient, "the identity provider at %s sent a malformed %s (%d bytes, not a JSON object)", g.origin, what, len(data))
	}
	if err := check(g, data); err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	resp.ContentLength = int64(len(data))
	return nil
}

// checkOpenIDConfig refuses a document whose endpoints MSAL uses lie anywhere but
// on the authority host over https: the token endpoint receives refresh tokens,
// secrets, assertions and codes.
func checkOpenIDConfig(g *guard, data []byte) error {
	var doc struct {
		Token      string `json:"token_endpoint"`
		Authorize  string `json:"authorization_endpoint"`
		DeviceCode string `json:"device_authorization_endpoint"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return failure.Errorf(failure.Transient, "the identity provider at %s sent a malformed openid-configuration: %w", g.origin, err)
	}
	if doc.Token == "" {
		return failure.Errorf(failure.Transient, "the identity provider at %s sent an openid-configuration without a token endpoint", g.origin)
	}
	for _, ep := range []struct{ name, url string }{
		{"token endpoint", doc.Token}, {"authorization endpoint", doc.Authorize}, {"device authorization endpoint", doc.DeviceCode},
	} {
		if ep.url == "" {
			continue
		}
		if err := g.sameOrigin("openid-configuration", ep.name, ep.url); err != nil {
			return err
		}
	}
	return nil
}

// keepable applies the guard's checks to a metadata document before it is stored,
// with the origin it was fetched from as the authority host.
func keepable(req *http.Request, data []byte) error {
	origin, err := originOf(req.URL.String())
	if err != nil {
		return err
	}
	g := &guard{origin: origin}
	if req.URL.Path == instanceDiscovery {
		return checkInstanceDiscovery(g, data)
	}
	return checkOpenIDConfig(g, data)
}

func checkInstanceDiscovery(g *guard, data []byte) error {
	var doc struct {
		TenantDiscovery string `json:"tenant_discovery_endpoint"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return failure.Errorf(failure.Transient, "the identity provider at %s sent a malformed instance discovery answer: %w", g.origin, err)
	}
	if doc.TenantDiscovery == "" {
		return nil
	}
	return g.sameOrigin("instance discovery answer", "tenant discovery endpoint", doc.TenantDiscovery)
}

func (g *guard) sameOrigin(doc, name, raw string) error {
	if o, err := originOf(raw); err == nil && o == g.origin {
		return nil
	}
	u, _ := url.Parse(raw)
	return failure.Errorf(failure.Configuration,
		"refused the identity provider's %s: its %s %s is not https on the authority host %s, and would receive credentials",
		doc, name, shown(u), g.origin)
}

// checkTokenAnswer refuses a 200 from the token endpoint that carries no access
// token: MSAL would otherwise fail with its decoder's words, or carry on.
func checkTokenAnswer(g *guard, data []byte) error {
	var ans struct {
		AccessToken any `json:"access_token"`
	}
	if err := json.Unmarshal(data, &ans); err != nil {
		return failure.Errorf(failure.Transient, "the identity provider at %s sent a malformed token answer: %w", g.origin, err)
	}
	if s, ok := ans.AccessToken.(string); !ok || s == "" {
		return failure.Errorf(failure.Transient, "the identity provider at %s answered 200 without an access token", g.origin)
	}
	return nil
}

func (g *guard) tooLarge() error {
	return failure.Errorf(failure.Transient, "the identity provider at %s sent an answer larger than %d bytes: refused", g.origin, MaxBody)
}

// transportError says what happened when no complete answer head arrived.
func (g *guard) transportError(ctx context.Context, err error) error {
	var f *failure.Error
	switch {
	case errors.As(err, &f):
		return err
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return failure.Errorf(failure.Transient, "the identity provider at %s did not answer within the time allowed (--timeout): %w", g.origin, err)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		// MSAL's wrapping of this one reads "server response error:" and nothing more.
		return failure.Errorf(failure.Transient, "the identity provider at %s closed the connection before answering: %w", g.origin, err)
	}
	// Refused, reset or unreachable connections are entra.Classify's to word
	// ("cannot reach the identity provider: ...").
	return err
}

// boundedBody reads at most MaxBody bytes of an answer and says plainly why a read
// failed: too large, cut off, or still arriving when the deadline came.
type boundedBody struct {
	body io.ReadCloser
	g    *guard
	ctx  context.Context
	n    int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.n > MaxBody {
		return 0, b.g.tooLarge()
	}
	if room := MaxBody + 1 - b.n; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := b.body.Read(p)
	b.n += int64(n)
	if b.n > MaxBody {
		return 0, b.g.tooLarge()
	}
	if err == nil || err == io.EOF {
		return n, err
	}
	var f *failure.Error
	switch {
	case errors.As(err, &f) || errors.Is(err, context.Canceled) && b.ctx.Err() == context.Canceled:
	case errors.Is(err, context.DeadlineExceeded) || b.ctx.Err() != nil:
		err = failure.Errorf(failure.Transient, "the identity provider at %s was still sending its answer when the time allowed ran out (--timeout; %d bytes received): %w", b.g.origin, b.n, err)
	default:
		err = failure.Errorf(failure.Transient, "the answer from the identity provider at %s was cut off after %d bytes: %w", b.g.origin, b.n, err)
	}
	return n, err
}

func (b *boundedBody) Close() error { return b.body.Close() }

func redirectError(origin string, status int, to *url.URL) error {
	code := "a redirect"
	if status != 0 {
		code = fmt.Sprintf("%d %s", status, http.StatusText(status))
	}
	target := "another location"
	if to != nil {
		target = shown(to)
	}
	return failure.Errorf(failure.Configuration,
		"the identity provider at %s answered %s to %s: a request carrying credentials never follows a redirect (check --authority-host, or a proxy in between)",
		origin, code, target)
}

// originOf is scheme://host:port of a URL, lower case, with the scheme's default
// port written out.
func originOf(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Host == "" || u.User != nil {
		return "", errors.New("no host")
	}
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		switch scheme {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port), nil
}

// shown is a URL named in a message: its scheme and host only (a path or query may
// carry anything), bounded and free of control characters.
func shown(u *url.URL) string {
	if u == nil {
		return "an unreadable URL"
	}
	return redact.Clean(u.Scheme + "://" + u.Host)
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
