package customers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/idphttp"
)

// Limits on what the APIs may send. A page of 999 GDAP relationships (Graph's largest)
// or 500 customers is well under a megabyte; the page count allows a million tenants.
const (
	MaxPageBytes    = 8 << 20
	DefaultMaxPages = 2000
	maxErrorText    = 300
	maxNameRunes    = 256
	maxLinkBytes    = 8 << 10
)

// API is one of the two APIs: its base URL (scheme and host) and the scope of the
// token it takes.
type API struct {
	URL   string // e.g. https://graph.microsoft.com
	Scope string // e.g. https://graph.microsoft.com/.default
	// Canonical is the cloud's own URL of the API when URL overrides it (a gateway in
	// front of Graph): links the API writes with the canonical host are followed on
	// URL's host instead, so the token still goes only to URL's host.
	Canonical string
}

// Client lists customers. Only Tokens, Graph and PartnerCenter are required.
type Client struct {
	Tokens        TokenSource
	Graph         API
	PartnerCenter API

	// HTTP sends the requests; nil means NewHTTPClient(Logf).
	HTTP *http.Client
	// MaxPages bounds the pages read from one API; 0 means DefaultMaxPages.
	MaxPages int
	Logf     func(format string, args ...any)
}

// NewHTTPClient is the client the API calls use: retries of 429 (after Retry-After)
// and 5xx, bounded in number and by the request's context (idphttp's transport, as
// for the identity provider), over a clone of the default transport, which honours
// SSL_CERT_FILE and the proxy variables. It never follows a redirect: the bearer token
// must reach no other URL than the one checked.
func NewHTTPClient(logf func(string, ...any)) *http.Client {
	var base http.RoundTripper = http.DefaultTransport
	if t, ok := base.(*http.Transport); ok {
		base = t.Clone()
	}
	return &http.Client{
		Transport:     idphttp.NewRetryTransport(base, idphttp.RetryOptions{Logf: logf}),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (c *Client) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}

func (c *Client) maxPages() int {
	if c.MaxPages > 0 {
		return c.MaxPages
	}
	return DefaultMaxPages
}

func (c *Client) http() *http.Client {
	if c.HTTP == nil {
		c.HTTP = NewHTTPClient(c.Logf)
	}
	return c.HTTP
}

// apiName names an API in messages.
func apiName(api API, c *Client) string {
	if api == c.PartnerCenter {
		return "Partner Center"
	}
	return "Microsoft Graph"
}

// sameHost parses link (absolute, or relative to api.URL) and refuses it unless it is
// https on api.URL's host and port: a page's link is outside input, and the request
// carries the bearer token.
func sameHost(api API, link string) (*url.URL, error) {
	base, err := url.Parse(api.URL)
	if err != nil || base.Scheme != "https" || base.Host == "" {
		return nil, fmt.Errorf("API URL %q is not an https URL", api.URL)
	}
	if len(link) > maxLinkBytes {
		return nil, fmt.Errorf("next-page link longer than %d bytes", maxLinkBytes)
	}
	u, err := base.Parse(link)
	if err != nil {
		return nil, fmt.Errorf("next-page link is not a URL: %w", err)
	}
	if c, err := url.Parse(api.Canonical); err == nil && api.Canonical != "" && c.Scheme == "https" &&
		u.Scheme == "https" && strings.EqualFold(u.Host, c.Host) && u.User == nil {
		u.Host = base.Host
	}
	if u.Scheme != "https" || !strings.EqualFold(u.Host, base.Host) || u.User != nil {
		return nil, fmt.Errorf("next-page link leads to %s, not to %s: refused, the token goes only to the API's own host", Clean(u.Scheme+"://"+u.Host, 100), base.Host)
	}
	u.Fragment = ""
	return u, nil
}

// get fetches one page with the API's token and returns its body.
func (c *Client) get(ctx context.Context, api API, u *url.URL, header http.Header) ([]byte, error) {
	name := apiName(api, c)
	tok, err := c.Tokens.AccessToken(ctx, api.Scope)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, failure.Errorf(failure.Unexpected, "failed to build the %s request: %w", name, err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	c.logf("GET %s", u.Redacted())
	resp, err := c.http().Do(req)
	if err != nil {
		kind := failure.Unexpected
		if idphttp.IsTransient(err) {
			kind = failure.Transient
		}
		return nil, failure.Errorf(kind, "failed to reach %s: %w", name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxPageBytes+1))
	if err != nil {
		return nil, failure.Errorf(failure.Transient, "failed to read %s's answer: %w", name, err)
	}
	if resp.StatusCode == http.StatusOK && len(body) > MaxPageBytes {
		return nil, failure.Errorf(failure.Unexpected, "%s sent a page larger than %d bytes", name, MaxPageBytes)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(name, resp, body)
	}
	return body, nil
}

// StatusError is the cause of a failure an API answered with an HTTP status (wrapped
// in a *failure.Error), as opposed to a failure to get the token for it.
type StatusError struct {
	API    string
	Status int
}

func (e *StatusError) Error() string { return fmt.Sprintf("%s answered %d", e.API, e.Status) }

// statusError classifies an API's refusal. 401: the token is not accepted (consent
// again, e.g. for Partner Center's MFA claim); 403: the app lacks the permission or
// the user the role; 429 and 5xx are what is left after the transport's retries.
func statusError(name string, resp *http.Response, body []byte) error {
	code, msg := apiErrorText(body)
	what := fmt.Sprintf("%s answered %d %s", name, resp.StatusCode, http.StatusText(resp.StatusCode))
	if code != "" {
		what += " (" + code + ")"
	}
	if msg != "" {
		what += ": " + msg
	}
	e := &failure.Error{Kind: failure.Unexpected, Message: what, Err: &StatusError{API: name, Status: resp.StatusCode}}
	switch s := resp.StatusCode; {
	case s == http.StatusUnauthorized:
		e.Kind = failure.ConsentNeeded
	case s == http.StatusForbidden:
		e.Kind = failure.Configuration
		if name == "Microsoft Graph" {
			e.Remedy = "grant the app Microsoft Graph's delegated permission DelegatedAdminRelationship.Read.All (admin consent in the partner tenant) and give the user a Partner Center role, or list with --source partner-center"
		} else {
			e.Remedy = "the user needs a Partner Center role (e.g. Admin agent or Sales agent)"
		}
	case s == http.StatusNotFound:
		e.Kind = failure.Configuration
	case idphttp.IsTransientStatus(s):
		e.Kind = failure.Transient
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			e.Message += " (Retry-After " + Clean(ra, 40) + ")"
		}
	case s >= 300 && s < 400:
		e.Kind = failure.Configuration
		e.Message = what + ": a redirect, not followed"
	}
	return e
}

// apiErrorText reads the error code and message of Graph ({"error":{"code","message"}})
// or Partner Center ({"code","description"}), cleaned and bounded.
func apiErrorText(body []byte) (code, msg string) {
	var v struct {
		Error json.RawMessage `json:"error"`
		Code  json.RawMessage `json:"code"`
		Desc  string          `json:"description"`
	}
	if json.Unmarshal(body, &v) != nil {
		return "", ""
	}
	var graph struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if len(v.Error) > 0 && json.Unmarshal(v.Error, &graph) == nil {
		return Clean(graph.Code, 80), Clean(graph.Message, maxErrorText)
	}
	var s string
	if json.Unmarshal(v.Code, &s) != nil {
		var n json.Number
		if json.Unmarshal(v.Code, &n) == nil {
			s = n.String()
		}
	}
	return Clean(s, 80), Clean(v.Desc, maxErrorText)
}

// loopGuard refuses a link seen before: a server whose links go round in circles
// would otherwise be read until MaxPages.
type loopGuard map[string]bool

func (g loopGuard) check(name, key string) error {
	if g[key] {
		return failure.Errorf(failure.Unexpected, "%s's next-page link leads back to a page already read: stopped", name)
	}
	g[key] = true
	return nil
}

func tooManyPages(name string, max int) error {
	return failure.Errorf(failure.Unexpected, "%s has more than %s pages: stopped", name, strconv.Itoa(max))
}
