// Package managedidentity serves the Azure App Service managed-identity protocol
// (api-version 2019-08-01) on a loopback address, so that unmodified Azure SDKs and
// tools (azidentity, @azure/identity, MSAL Python and the Azure CLI, Azure PowerShell)
// get the helper's delegated access tokens as if they ran in App Service.
//
// A request is answered only when every check passes: method GET, the endpoint's exact
// path (no decoding, no cleaning), the Host header naming the listener's own loopback
// address and port, no header a browser or proxy adds (Origin, Referer, Sec-Fetch-*,
// X-Forwarded-For, Forwarded), exactly one X-IDENTITY-HEADER equal to the endpoint's
// secret (compared in constant time), a well-formed query with api-version 2019-08-01
// and one resource, at most one identity selector that this endpoint knows, and a
// resource on the allow-list when there is one. Anything else is refused with a 4xx,
// an error body and no token; no response ever carries a CORS header.
//
// The tokens come from a Source, which cli implements with the same chain as get.
package managedidentity

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/pctoken/pctoken-helper/failure"
)

// The protocol's constants.
const (
	APIVersion = "2019-08-01"
	HeaderName = "X-IDENTITY-HEADER"
)

// Limits on what a request may carry. SDKs send a request line of a few hundred bytes
// and a handful of headers.
const (
	maxRequestURI   = 4096
	maxHeaderBytes  = 16 << 10
	maxResourceLen  = 512
	maxSelectorLen  = 512
	maxMessageBytes = 2048
)

// Token is an access token handed to the caller.
type Token struct {
	AccessToken string
	ExpiresOn   time.Time
}

// Request asks a Source for a token.
type Request struct {
	// Tenant is the tenant the token is for; "" means the endpoint's default (the
	// profile's home tenant unless --tenant said otherwise).
	Tenant string
	// Resource is the normalised resource (no trailing "/", no "/.default").
	Resource string
	// Scope is Resource + "/.default", what the identity provider is asked for.
	Scope string
}

// Source hands out access tokens. Errors should be *failure.Error: their kind picks
// the status, and their message is what the caller's SDK shows.
type Source interface {
	Token(ctx context.Context, r Request) (Token, error)
}

// SourceFunc adapts a function to Source.
type SourceFunc func(ctx context.Context, r Request) (Token, error)

// Token calls f.
func (f SourceFunc) Token(ctx context.Context, r Request) (Token, error) { return f(ctx, r) }

// Endpoint is one identity served at one path with one secret.
type Endpoint struct {
	// Path is the exact request path, e.g. "/pctoken-helper/default/home".
	Path string
	// Secret is the X-IDENTITY-HEADER value (NewSecret).
	Secret string
	// Tenant is the tenant of requests without a selector; "" for the source's default.
	Tenant string
	// ClientID is reported as client_id in answers; a client_id selector equal to it
	// selects Tenant.
	ClientID string
	// ObjectID is the signed-in user's object id; an object_id selector equal to it
	// selects Tenant.
	ObjectID string
	// Aliases map a selector value (of client_id, object_id or mi_res_id, compared
	// without regard to case) to a tenant.
	Aliases map[string]string
	// Allow lists the resources (normalised, see NormalizeResource) tokens may be for;
	// empty allows any.
	Allow []string
	// Source hands out the tokens.
	Source Source
	// Remedy, if set, returns the command that fixes a Source error, for the message.
	Remedy func(error) string
	// Timeout bounds one token request, retries included; 0 means 30s.
	Timeout time.Duration
}

// NewSecret returns a fresh 256-bit secret, hex encoded.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("failed to make the endpoint's secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// EndpointPath is the path of the endpoint of a profile and tenant ("" for the
// profile's default tenant). Profile names and tenants hold only letters, digits,
// '-', '_' and '.', so the path needs no escaping.
func EndpointPath(profile, tenant string) string {
	if tenant == "" {
		tenant = "home"
	}
	return "/pctoken-helper/" + profile + "/" + tenant
}

// NormalizeResource turns what a client sends as resource (or a scope) into the
// resource: surrounding space, a "/.default" suffix (some clients send the scope) and
// trailing slashes removed. It must be an absolute URI with a host (https://graph.microsoft.com,
// api://guid) or an application id (GUID).
func NormalizeResource(raw string) (string, error) {
	r := strings.TrimSpace(raw)
	for prev := ""; prev != r; {
		prev = r
		r = strings.TrimRight(r, "/")
		if strings.HasSuffix(strings.ToLower(r), "/.default") {
			r = r[:len(r)-len("/.default")]
		}
	}
	switch {
	case r == "":
		return "", errors.New("resource is empty")
	case len(r) > maxResourceLen:
		return "", fmt.Errorf("resource is longer than %d characters", maxResourceLen)
	}
	for _, c := range r {
		if c <= ' ' || c >= 0x7f || c == ',' || c == '"' || c == '\\' || c == '#' || c == '?' {
			return "", fmt.Errorf("resource %s holds a character a resource never does", quote(r))
		}
	}
	if isGUID(r) {
		return r, nil
	}
	u, err := url.Parse(r)
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil {
		return "", fmt.Errorf("resource %s is neither an absolute URI such as https://management.azure.com nor an application id", quote(r))
	}
	return r, nil
}

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return true
}

// Handler answers the endpoints of one listener.
type Handler struct {
	host      string // the Host header every request must carry
	endpoints map[string]*Endpoint
	logf      func(format string, args ...any)
}

// NewHandler is a handler for a listener at addr ("127.0.0.1:PORT" or "[::1]:PORT").
// logf, if set, receives one line per request, never a secret.
func NewHandler(addr string, logf func(format string, args ...any), endpoints ...Endpoint) (*Handler, error) {
	h := &Handler{host: addr, endpoints: map[string]*Endpoint{}, logf: logf}
	for i := range endpoints {
		e := endpoints[i]
		if !strings.HasPrefix(e.Path, "/") || strings.ContainsAny(e.Path, "?#%\\") {
			return nil, fmt.Errorf("invalid endpoint path %q", e.Path)
		}
		if len(e.Secret) < 32 {
			return nil, errors.New("an endpoint's secret must have at least 128 bits")
		}
		if e.Source == nil {
			return nil, errors.New("an endpoint needs a token source")
		}
		if _, dup := h.endpoints[e.Path]; dup {
			return nil, fmt.Errorf("two endpoints at %s", e.Path)
		}
		h.endpoints[e.Path] = &e
	}
	return h, nil
}

// refusal is a request refused before any token is asked for.
type refusal struct {
	status int
	code   string // the error field
	msg    string
}

func refuse(status int, code, format string, args ...any) *refusal {
	return &refusal{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// checked is a request that passed every check.
type checked struct {
	e        *Endpoint
	resource string // as the client sent it, echoed back
	req      Request
}

// forbiddenHeader names a header that SDKs never send and browsers or proxies do.
func forbiddenHeader(h http.Header) string {
	for k := range h {
		ck := http.CanonicalHeaderKey(k)
		switch {
		case ck == "Origin", ck == "Referer", ck == "X-Forwarded-For", ck == "Forwarded",
			ck == "X-Forwarded-Host", ck == "X-Real-Ip",
			strings.HasPrefix(ck, "Sec-Fetch-"), ck == "Access-Control-Request-Method":
			return ck
		}
	}
	return ""
}

// check applies every rule of the package comment to r.
func (h *Handler) check(r *http.Request) (*checked, *refusal) {
	if r.Method != http.MethodGet {
		return nil, refuse(http.StatusMethodNotAllowed, "invalid_request", "method %s is not allowed: the endpoint answers GET only", quote(r.Method))
	}
	if name := forbiddenHeader(r.Header); name != "" {
		return nil, refuse(http.StatusForbidden, "invalid_request", "a request carrying a %s header is refused: SDKs never send one, browsers and proxies do", name)
	}
	if !h.hostAllowed(r.Host) {
		return nil, refuse(http.StatusForbidden, "invalid_request", "the Host header %s is not this endpoint's address %s", quote(r.Host), h.host)
	}
	if len(r.RequestURI) > maxRequestURI {
		return nil, refuse(http.StatusRequestURITooLong, "invalid_request", "the request URI is longer than %d bytes", maxRequestURI)
	}
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		return nil, refuse(http.StatusBadRequest, "invalid_request", "a GET to the endpoint carries no body")
	}
	// The path as sent, neither decoded nor cleaned: "/a/../b", "%2F" and "\" never
	// match (aad-pod-identity's CVE-2022-23551 came from a lenient path check).
	path, rawQuery, _ := strings.Cut(r.RequestURI, "?")
	e, ok := h.endpoints[path]
	if !ok {
		return nil, refuse(http.StatusNotFound, "invalid_request", "no endpoint at this path")
	}
	got := r.Header.Values(HeaderName)
	switch {
	case len(got) == 0:
		return nil, refuse(http.StatusUnauthorized, "unauthorized_client", "the %s header is missing: run the program with pctoken-helper mi exec, or export IDENTITY_HEADER as mi serve printed it", HeaderName)
	case len(got) > 1:
		return nil, refuse(http.StatusBadRequest, "invalid_request", "more than one %s header", HeaderName)
	case subtle.ConstantTimeCompare([]byte(got[0]), []byte(e.Secret)) != 1:
		return nil, refuse(http.StatusUnauthorized, "unauthorized_client", "the %s header is wrong: IDENTITY_HEADER must be the value this endpoint was started with", HeaderName)
	}
	if uid, ok := connUID(r); ok && uid != os.Getuid() {
		return nil, refuse(http.StatusForbidden, "unauthorized_client", "the request comes from a process of another user (uid %d): the endpoint serves its own user only", uid)
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, refuse(http.StatusBadRequest, "invalid_request", "malformed query")
	}
	one := func(name string) (string, *refusal) {
		switch v := q[name]; len(v) {
		case 0:
			return "", nil
		case 1:
			return v[0], nil
		}
		return "", refuse(http.StatusBadRequest, "invalid_request", "parameter %s is given more than once", name)
	}
	version, rf := one("api-version")
	if rf != nil {
		return nil, rf
	}
	if version != APIVersion {
		return nil, refuse(http.StatusBadRequest, "invalid_request", "api-version %s is not supported: this endpoint speaks %s", quote(version), APIVersion)
	}
	rawResource, rf := one("resource")
	if rf != nil {
		return nil, rf
	}
	if rawResource == "" {
		return nil, refuse(http.StatusBadRequest, "invalid_request", "parameter resource is missing")
	}
	resource, err := NormalizeResource(rawResource)
	if err != nil {
		return nil, refuse(http.StatusBadRequest, "invalid_resource", "%s", err.Error())
	}
	tenant, rf := e.selectTenant(one)
	if rf != nil {
		return nil, rf
	}
	if len(e.Allow) > 0 && !allowed(e.Allow, resource) {
		return nil, refuse(http.StatusForbidden, "invalid_resource", "resource %s is not allowed at this endpoint (allowed: %s); add --allow-resource %s to mi exec or mi serve", quote(resource), strings.Join(e.Allow, ", "), resource)
	}
	return &checked{e: e, resource: rawResource, req: Request{Tenant: tenant, Resource: resource, Scope: resource + "/.default"}}, nil
}

// connUID is the user of the process at the other end of r's connection, where the
// system tells it (Linux): a second line of defence behind the header, for a secret
// that leaked to another user.
func connUID(r *http.Request) (int, bool) {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return 0, false
	}
	l, err1 := netip.ParseAddrPort(local.String())
	rm, err2 := netip.ParseAddrPort(r.RemoteAddr)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return peerUID(l, rm)
}

func allowed(list []string, resource string) bool {
	for _, a := range list {
		if strings.EqualFold(a, resource) {
			return true
		}
	}
	return false
}

// selectTenant maps the identity selector of a request to a tenant. No selector, or
// the profile's own app (client_id) or user (object_id), is the endpoint's tenant; a
// configured alias is its tenant; anything else is refused, never answered from
// another tenant.
func (e *Endpoint) selectTenant(one func(string) (string, *refusal)) (string, *refusal) {
	name, value := "", ""
	for _, n := range []string{"client_id", "object_id", "mi_res_id", "msi_res_id", "principal_id"} {
		v, rf := one(n)
		if rf != nil {
			return "", rf
		}
		if v == "" {
			continue
		}
		if name != "" {
			return "", refuse(http.StatusBadRequest, "invalid_request", "parameters %s and %s are given together: a request selects one identity", name, n)
		}
		name, value = n, v
	}
	if name == "" {
		return e.Tenant, nil
	}
	if len(value) > maxSelectorLen {
		return "", refuse(http.StatusBadRequest, "invalid_request", "parameter %s is longer than %d characters", name, maxSelectorLen)
	}
	if t, ok := lookupFold(e.Aliases, value); ok {
		return t, nil
	}
	switch {
	case name == "client_id" && e.ClientID != "" && strings.EqualFold(value, e.ClientID),
		name == "object_id" && e.ObjectID != "" && strings.EqualFold(value, e.ObjectID):
		return e.Tenant, nil
	}
	return "", refuse(http.StatusBadRequest, "invalid_request", "unknown identity %s=%s: this endpoint serves client_id %s and the aliases given with --tenant-alias; unset AZURE_CLIENT_ID or the credential's ID option, or add --tenant-alias %s=TENANT", name, quote(value), e.ClientID, clean(value, 64))
}

func lookupFold(m map[string]string, k string) (string, bool) {
	for mk, v := range m {
		if strings.EqualFold(mk, k) {
			return v, true
		}
	}
	return "", false
}

// hostAllowed: the Host header must be the listener's own address, so that a page
// whose name was rebound to 127.0.0.1 (DNS rebinding) is refused.
func (h *Handler) hostAllowed(host string) bool {
	if strings.EqualFold(host, h.host) {
		return true
	}
	// Clients leave out the default port.
	if ip, port, err := net.SplitHostPort(h.host); err == nil && port == "80" {
		if strings.Contains(ip, ":") {
			ip = "[" + ip + "]"
		}
		return strings.EqualFold(host, ip)
	}
	return false
}

// tokenBody is the App Service answer. expires_on is unix seconds as a string of
// digits: MSAL Python does int(expires_on), and other formats broke it.
type tokenBody struct {
	AccessToken string `json:"access_token"`
	ExpiresOn   string `json:"expires_on"`
	Resource    string `json:"resource"`
	TokenType   string `json:"token_type"`
	ClientID    string `json:"client_id"`
}

// errorBody carries the message in the fields each client shows: azidentity and MSAL
// Go show the whole body, MSAL Python "statusCode, message", MSAL Node (behind
// @azure/identity) message or error_description, and error.
type errorBody struct {
	StatusCode       int    `json:"statusCode"`
	Message          string `json:"message"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// ServeHTTP answers one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, rf := h.check(r)
	if rf != nil {
		h.log("refused %s: %d %s", clean(r.URL.Path, 80), rf.status, rf.msg)
		writeError(w, rf.status, rf.code, rf.msg)
		return
	}
	timeout := c.e.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	t, err := c.e.Source.Token(ctx, c.req)
	if err != nil {
		status, code := statusOf(err)
		msg := err.Error()
		if c.e.Remedy != nil {
			if rem := c.e.Remedy(err); rem != "" {
				msg += "; hint: " + rem
			}
		}
		h.log("token for %s: %d %s", c.req.Resource, status, clean(msg, maxMessageBytes))
		writeError(w, status, code, msg)
		return
	}
	h.log("token for %s in tenant %s: 200", c.req.Resource, orHome(c.req.Tenant))
	setHeaders(w)
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(tokenBody{
		AccessToken: t.AccessToken,
		ExpiresOn:   strconv.FormatInt(t.ExpiresOn.Unix(), 10),
		Resource:    c.resource,
		TokenType:   "Bearer",
		ClientID:    c.e.ClientID,
	})
}

func orHome(t string) string {
	if t == "" {
		return "(default)"
	}
	return t
}

// statusOf maps a failure kind to a status the SDKs do not retry, except for
// transient failures, which they may retry.
func statusOf(err error) (int, string) {
	switch failure.KindOf(err) {
	case failure.Usage:
		return http.StatusBadRequest, "invalid_request"
	case failure.ConsentNeeded:
		return http.StatusUnauthorized, "consent_required"
	case failure.Configuration:
		return http.StatusForbidden, "configuration"
	case failure.Transient:
		return http.StatusServiceUnavailable, "temporarily_unavailable"
	}
	return http.StatusInternalServerError, "internal"
}

func setHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Type", "application/json; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	msg = "pctoken-helper: " + clean(msg, maxMessageBytes)
	setHeaders(w)
	if status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodGet)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{StatusCode: status, Message: msg, Error: code, ErrorDescription: msg})
}

func (h *Handler) log(format string, args ...any) {
	if h.logf != nil {
		h.logf("mi: "+format, args...)
	}
}

// clean bounds s and replaces control characters, for text from a request or the
// identity provider shown to a person.
func clean(s string, max int) string {
	var b strings.Builder
	for _, c := range s {
		if b.Len() >= max {
			b.WriteString("...")
			break
		}
		if unicode.IsControl(c) || c == unicode.ReplacementChar {
			c = '?'
		}
		b.WriteRune(c)
	}
	return b.String()
}

func quote(s string) string { return strconv.Quote(clean(s, 80)) }
