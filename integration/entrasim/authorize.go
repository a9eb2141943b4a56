package entrasim

import (
	"context"
	"errors"
	"fmt"
	"html"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Lifetimes Entra gives its one-time codes.
const (
	authCodeLifetime   = 10 * time.Minute
	deviceCodeLifetime = 15 * time.Minute
	deviceCodeInterval = 5 // seconds, as Entra advertises (MSAL ignores it)
)

// maxFormBytes bounds request bodies; Entra's own limit is of the same order.
const maxFormBytes = 1 << 20

// authCode is an issued authorization code.
type authCode struct {
	clientID    string
	redirectURI string
	challenge   string
	method      string
	scopes      string
	tenantID    string // resolved; looked up again at redemption
	nonce       string
	issued      time.Time
	used        bool
}

// AuthorizeRecord is what the authorize endpoint saw in its last request that produced
// a code.
type AuthorizeRecord struct {
	Tenant        string // as written in the path
	ClientID      string
	RedirectURI   string
	State         string
	CodeChallenge string
	Method        string // code_challenge_method
	Scopes        []string
	ResponseMode  string
	Prompt        string
	LoginHint     string
	Nonce         string
	Code          string // the code issued
}

// LastAuthorize returns the last successful authorize request.
func (s *Sim) LastAuthorize() (AuthorizeRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastAuthorize == nil {
		return AuthorizeRecord{}, false
	}
	rec := *s.lastAuthorize
	rec.Scopes = append([]string(nil), rec.Scopes...)
	return rec, true
}

// serveAuthorize plays the browser part of the auth code flow: the configured user is
// signed in and approves at once, and the code goes to the redirect URI.
func (s *Sim) serveAuthorize(w http.ResponseWriter, r *http.Request, rc *reqCtx, seg string) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, rc, errMalformed())
		return
	}
	p := r.Form
	clientID, redirect := p.Get("client_id"), p.Get("redirect_uri")
	rc.note("client=" + clientID)
	if clientID == "" {
		s.errorPage(w, rc, errMissingParam("client_id"))
		return
	}
	if redirect == "" {
		s.errorPage(w, rc, errMissingParam("redirect_uri"))
		return
	}
	mode := p.Get("response_mode")
	if mode != "form_post" && mode != "fragment" {
		mode = "query"
	}
	state := p.Get("state")
	fail := func(e *aadError) {
		s.countError(rc, e)
		s.respondToClient(w, redirect, mode, s.errorParams(e, rc, state))
	}

	s.mu.Lock()
	ref := s.resolveTenant(seg)
	c := s.clients[strings.ToLower(clientID)]
	t := s.forUser(ref)
	s.mu.Unlock()
	switch {
	case !ref.known():
		s.errorPage(w, rc, errUnknownTenant(seg))
		return
	case c == nil && isLoopbackRedirect(redirect):
		fail(errUnknownClient(clientID, ref.t))
		return
	case c == nil:
		s.errorPage(w, rc, errUnknownClient(clientID, ref.t))
		return
	case !c.redirectAllowed(redirect):
		s.errorPage(w, rc, newErr("invalid_request", 50011, "The redirect URI '%s' specified in the request does not match the redirect URIs configured for the application '%s'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal.", redirect, c.ID))
		return
	case !t.userAccess:
		s.errorPage(w, rc, errNoAccess(t, c))
		return
	}

	s.mu.Lock()
	declined := s.ctl.decline
	s.mu.Unlock()
	if declined {
		fail(newErr("access_denied", 65004, "User declined to consent to access the app."))
		return
	}

	challenge, method := p.Get("code_challenge"), p.Get("code_challenge_method")
	if challenge != "" && method == "" {
		method = "plain" // RFC 7636's default
	}
	switch {
	case p.Get("response_type") != "code":
		fail(newErr("unsupported_response_type", 700054, "response_type '%s' is not enabled for the application.", p.Get("response_type")))
		return
	case p.Get("scope") == "":
		fail(errMissingParam("scope"))
		return
	case challenge != "" && method != "S256" && method != "plain":
		fail(newErr("invalid_request", 9002313, "Invalid request. Request is malformed or invalid."))
		return
	case method == "S256" && len(challenge) != 43:
		fail(newErr("invalid_request", 501491, "Invalid size of Code_Challenge parameter."))
		return
	}

	code := randomToken("1.AAAA", 192)
	rec := &AuthorizeRecord{
		Tenant:        seg,
		ClientID:      c.ID,
		RedirectURI:   redirect,
		State:         state,
		CodeChallenge: challenge,
		Method:        method,
		Scopes:        strings.Fields(p.Get("scope")),
		ResponseMode:  mode,
		Prompt:        p.Get("prompt"),
		LoginHint:     p.Get("login_hint"),
		Nonce:         p.Get("nonce"),
		Code:          code,
	}
	s.mu.Lock()
	s.codes[code] = &authCode{
		clientID:    c.ID,
		redirectURI: redirect,
		challenge:   challenge,
		method:      method,
		scopes:      p.Get("scope"),
		tenantID:    t.id,
		nonce:       rec.Nonce,
		issued:      s.now(),
	}
	s.lastAuthorize = rec
	s.mu.Unlock()

	params := url.Values{"code": {code}, "session_state": {newGUID()}}
	if state != "" {
		params.Set("state", state)
	}
	rc.note("code issued")
	s.respondToClient(w, redirect, mode, params)
}

func (s *Sim) errorParams(e *aadError, rc *reqCtx, state string) url.Values {
	b := s.errorBody(e, rc)
	v := url.Values{"error": {b.Error}, "error_description": {b.ErrorDescription}, "error_uri": {b.ErrorURI}}
	if state != "" {
		v.Set("state", state)
	}
	return v
}

func (s *Sim) countError(rc *reqCtx, e *aadError) {
	s.mu.Lock()
	s.stats.Errors[e.code]++
	s.mu.Unlock()
	rc.note(fmt.Sprintf("AADSTS%d", e.code))
}

// formPostPage is Entra's auto-submitting form for response_mode=form_post.
var formPostPage = template.Must(template.New("form_post").Parse(`<html><head><title>Working...</title></head><body><form method="POST" name="hiddenform" action="{{.Action}}">{{range .Fields}}<input type="hidden" name="{{.Name}}" value="{{.Value}}" />{{end}}<noscript><p>Script is disabled. Click Submit to continue.</p><input type="submit" value="Submit" /></noscript></form><script language="javascript">document.forms[0].submit();</script></body></html>`))

type formField struct{ Name, Value string }

// respondToClient hands parameters to the client's redirect URI in the requested mode.
func (s *Sim) respondToClient(w http.ResponseWriter, redirect, mode string, params url.Values) {
	switch mode {
	case "form_post":
		var fields []formField
		for _, k := range []string{"code", "client_info", "state", "session_state", "error", "error_description", "error_uri"} {
			if v := params.Get(k); v != "" {
				fields = append(fields, formField{k, v})
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store, no-cache")
		_ = formPostPage.Execute(w, struct {
			Action string
			Fields []formField
		}{redirect, fields})
	case "fragment":
		w.Header().Set("Cache-Control", "no-store, no-cache") // as Entra sends it: the URL carries the code
		w.Header().Set("Location", redirect+"#"+params.Encode())
		w.WriteHeader(http.StatusFound)
	default:
		sep := "?"
		if strings.Contains(redirect, "?") {
			sep = "&"
		}
		w.Header().Set("Cache-Control", "no-store, no-cache")
		w.Header().Set("Location", redirect+sep+params.Encode())
		w.WriteHeader(http.StatusFound)
	}
}

var errorPageTmpl = template.Must(template.New("error").Parse(`<!DOCTYPE html><html><head><title>Sign in to your account</title></head><body><h1>Sorry, but we're having trouble signing you in.</h1><p id="error">AADSTS{{.Code}}: {{.Text}}</p><p>Trace ID: {{.TraceID}}</p><p>Correlation ID: {{.CorrelationID}}</p></body></html>`))

// errorPage is what the browser shows when Entra cannot send the user back to the app.
func (s *Sim) errorPage(w http.ResponseWriter, rc *reqCtx, e *aadError) {
	s.countError(rc, e)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	_ = errorPageTmpl.Execute(w, struct {
		Code                         int
		Text, TraceID, CorrelationID string
	}{e.code, e.text, rc.traceID, rc.correlationID})
}

var (
	formActionRe = regexp.MustCompile(`<form method="POST" name="hiddenform" action="([^"]*)">`)
	formInputRe  = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)" />`)
)

// Browse plays the user's browser for an authorize URL: it opens the URL, lets the
// simulated user approve, and delivers the answer to the redirect URI the way a browser
// would (following the redirect, or submitting the form_post form). It returns the
// status and body of the redirect URI's answer; an authorize error page is an error.
func (s *Sim) Browse(ctx context.Context, authorizeURL string) (int, []byte, error) {
	hc := &http.Client{
		Transport:     s.client.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	do := func(method, target string, form url.Values) (*http.Response, []byte, error) {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, target, body)
		if err != nil {
			return nil, nil, err
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxFormBytes))
		return resp, data, err
	}

	resp, page, err := do(http.MethodGet, authorizeURL, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("browse: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusFound:
		loc := resp.Header.Get("Location")
		if i := strings.Index(loc, "#"); i >= 0 {
			// A browser keeps the fragment to itself; scripts on the page would read it.
			return 0, nil, fmt.Errorf("browse: fragment response cannot be delivered: %s", loc[:i])
		}
		resp, body, err := do(http.MethodGet, loc, nil)
		if err != nil {
			return 0, nil, fmt.Errorf("browse: deliver to redirect uri: %w", err)
		}
		return followSeeOther(do, resp, body)
	case resp.StatusCode == http.StatusOK:
		m := formActionRe.FindSubmatch(page)
		if m == nil {
			return 0, nil, errors.New("browse: authorize page has no form")
		}
		form := url.Values{}
		for _, in := range formInputRe.FindAllSubmatch(page, -1) {
			form.Set(html.UnescapeString(string(in[1])), html.UnescapeString(string(in[2])))
		}
		resp, body, err := do(http.MethodPost, html.UnescapeString(string(m[1])), form)
		if err != nil {
			return 0, nil, fmt.Errorf("browse: deliver to redirect uri: %w", err)
		}
		return followSeeOther(do, resp, body)
	default:
		return 0, nil, fmt.Errorf("browse: authorize answered %d: %s", resp.StatusCode, errorText(page))
	}
}

// followSeeOther follows the redirect URI's 303 to its result page with a GET, as a
// browser does.
func followSeeOther(do func(string, string, url.Values) (*http.Response, []byte, error), resp *http.Response, body []byte) (int, []byte, error) {
	if resp.StatusCode != http.StatusSeeOther {
		return resp.StatusCode, body, nil
	}
	loc, err := resp.Location()
	if err != nil {
		return 0, nil, fmt.Errorf("browse: follow the redirect uri's answer: %w", err)
	}
	resp, body, err = do(http.MethodGet, loc.String(), nil)
	if err != nil {
		return 0, nil, fmt.Errorf("browse: follow the redirect uri's answer: %w", err)
	}
	return resp.StatusCode, body, nil
}

var errorTextRe = regexp.MustCompile(`<p id="error">([^<]*)</p>`)

func errorText(page []byte) string {
	if m := errorTextRe.FindSubmatch(page); m != nil {
		return html.UnescapeString(string(m[1]))
	}
	return strings.TrimSpace(string(page))
}
