package entrasim

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Grant types as the Stats count them.
const (
	grantAuthCode    = "authorization_code"
	grantRefresh     = "refresh_token"
	grantDeviceCode  = "device_code"
	grantClientCreds = "client_credentials"
)

const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// normalizeGrant folds the spellings of a grant type; unknown ones count as "other" so
// that arbitrary input cannot grow the counters.
func normalizeGrant(g string) string {
	switch g {
	case grantAuthCode, grantRefresh, grantClientCreds, "":
		return g
	case grantDeviceCode, "urn:ietf:params:oauth:grant-type:device_code":
		return grantDeviceCode
	default:
		return "other"
	}
}

type rtState int

const (
	rtActive rtState = iota
	rtExpired
	rtRevoked
)

// refreshToken is what the simulator remembers of an issued refresh token. It is bound
// to a client and the user; any tenant where the user has access accepts it.
type refreshToken struct {
	clientID  string
	issued    time.Time
	authTime  time.Time // the interactive sign-in it descends from, carried through rotation
	state     rtState
	revokedAt time.Time
	redeemed  bool
}

// rtProblem says why rt would be refused now, apart from client and tenant. The caller
// holds s.mu.
func (s *Sim) rtProblem(rt *refreshToken, now time.Time, resource string) *aadError {
	switch {
	case rt.state == rtRevoked:
		return errRevoked(rt.issued, rt.revokedAt)
	case rt.state == rtExpired:
		return errInactive(rt.issued, maxInactive)
	case now.Sub(rt.issued) > maxInactive:
		return errInactive(rt.issued, now.Sub(rt.issued))
	case s.ctl.strict && rt.redeemed:
		return newErr("invalid_grant", 70000, "The provided value for the input parameter 'refresh_token' is not valid. The refresh token has already been redeemed.")
	case !s.ctl.mfaSince.IsZero() && rt.authTime.Before(s.ctl.mfaSince):
		return errMFA(resource)
	}
	return nil
}

// fault is an injected failure taken by one token request.
type fault struct {
	hang       bool
	status     int
	retryAfter time.Duration
}

// takeFault consumes the next injected fault, if any. The caller holds s.mu.
func (s *Sim) takeFault() (fault, bool) {
	switch {
	case s.ctl.hang > 0:
		s.ctl.hang--
		return fault{hang: true}, true
	case s.ctl.throttle > 0:
		s.ctl.throttle--
		return fault{status: http.StatusTooManyRequests, retryAfter: s.ctl.retryAfter}, true
	case s.ctl.fail > 0:
		s.ctl.fail--
		return fault{status: s.ctl.failStatus}, true
	}
	return fault{}, false
}

// parseTokenForm reads a POSTed form body, as Entra's token and device code endpoints
// take it.
func parseTokenForm(w http.ResponseWriter, r *http.Request) (url.Values, *aadError) {
	if r.Method != http.MethodPost {
		return nil, newErr("invalid_request", 900561, "The endpoint only accepts POST, OPTIONS requests. Received a %s request.", r.Method)
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return nil, newErr("invalid_request", 9002313, "Invalid request. Request is malformed or invalid.")
	}
	return r.PostForm, nil
}

func (s *Sim) serveToken(w http.ResponseWriter, r *http.Request, rc *reqCtx, seg string) {
	form, formErr := parseTokenForm(w, r)
	grant := normalizeGrant(form.Get("grant_type"))
	rc.note("grant=" + grant)

	s.mu.Lock()
	if grant != "" {
		s.stats.Grants[grant]++
	}
	f, faulty := s.takeFault()
	latency := s.ctl.latency
	s.mu.Unlock()

	if faulty && f.hang {
		rc.note("hang")
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return
	}
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		case <-s.done:
			t.Stop()
			return
		}
	}
	if faulty {
		s.writeFault(w, rc, f)
		return
	}
	if formErr != nil {
		s.writeError(w, rc, formErr)
		return
	}
	resp, e := s.grant(r, rc, seg, grant, form)
	if e != nil {
		s.writeError(w, rc, e)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Sim) writeFault(w http.ResponseWriter, rc *reqCtx, f fault) {
	if f.status == http.StatusTooManyRequests {
		secs := int64(math.Ceil(f.retryAfter.Seconds()))
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		e := newErr("temporarily_unavailable", 90055, "There are too many incoming requests. Please try again later.")
		e.status = f.status
		s.writeError(w, rc, e)
		return
	}
	oauthErr := "server_error"
	if f.status == http.StatusServiceUnavailable {
		oauthErr = "temporarily_unavailable"
	}
	e := newErr(oauthErr, 90033, "A transient error has occurred. Please try again.")
	e.status = f.status
	s.writeError(w, rc, e)
}

// grant authenticates the client and runs the grant.
func (s *Sim) grant(r *http.Request, rc *reqCtx, seg, grant string, form url.Values) (tokenResponse, *aadError) {
	switch grant {
	case "":
		return tokenResponse{}, errMissingParam("grant_type")
	case grantAuthCode, grantRefresh, grantDeviceCode, grantClientCreds:
	default:
		return tokenResponse{}, newErr("unsupported_grant_type", 70003, "The app requested an unsupported grant type '%s'.", form.Get("grant_type"))
	}

	clientID, basicSecret := form.Get("client_id"), ""
	if user, pass, ok := r.BasicAuth(); ok {
		// client_secret_basic: both parts are form-encoded (RFC 6749 section 2.3.1).
		if u, err := url.QueryUnescape(user); err == nil && clientID == "" {
			clientID = u
		}
		if p, err := url.QueryUnescape(pass); err == nil {
			basicSecret = p
		}
	}
	rc.note("client=" + clientID)
	if clientID == "" {
		return tokenResponse{}, errMissingParam("client_id")
	}

	s.mu.Lock()
	ref := s.resolveTenant(seg)
	c := s.clients[strings.ToLower(clientID)]
	s.mu.Unlock()
	if !ref.known() {
		return tokenResponse{}, errUnknownTenant(seg)
	}
	if c == nil {
		return tokenResponse{}, errUnknownClient(clientID, ref.t)
	}
	secret := form.Get("client_secret")
	if secret == "" {
		secret = basicSecret
	}
	authn, e := s.authenticateClient(c, ref, secret, form)
	if e != nil {
		return tokenResponse{}, e
	}

	switch grant {
	case grantAuthCode:
		return s.grantAuthCode(rc, c, authn, ref, form)
	case grantRefresh:
		return s.grantRefresh(rc, c, authn, ref, form)
	case grantDeviceCode:
		return s.grantDeviceCode(rc, c, authn, form)
	default:
		return s.grantClientCredentials(c, authn, ref, form)
	}
}

// authenticateClient checks the client's credential and returns its appidacr: "0" for a
// public client, "1" for a secret, "2" for a certificate.
func (s *Sim) authenticateClient(c *Client, ref tenantRef, secret string, form url.Values) (string, *aadError) {
	assertion := form.Get("client_assertion")
	if c.Public {
		if secret != "" || assertion != "" {
			return "", newErr("invalid_client", 700025, "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.")
		}
		return "0", nil
	}
	switch {
	case secret != "":
		if c.Secret == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1 {
			return "", newErr("invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", c.ID)
		}
		if c.SecretExpired {
			return "", newErr("invalid_client", 7000222, "The provided client secret keys for app '%s' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.", c.ID)
		}
		return "1", nil
	case assertion != "":
		if form.Get("client_assertion_type") != clientAssertionType {
			return "", newErr("invalid_request", 9002313, "Invalid request. Request is malformed or invalid.")
		}
		if e := s.verifyAssertion(c, ref, assertion); e != nil {
			return "", e
		}
		return "2", nil
	}
	return "", newErr("invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
}

var errKeyNotFound = errors.New("key not found")

// verifyAssertion checks a certificate client assertion as Entra does: signed (RS256 or
// PS256) by the registered certificate named in x5t#S256 or x5t, issued and subject the
// client, addressed to this tenant's token endpoint, within its validity.
func (s *Sim) verifyAssertion(c *Client, ref tenantRef, assertion string) *aadError {
	if c.Certificate == nil {
		return newErr("invalid_client", 700027, "Client assertion failed signature validation. [Reason - The key was not found.]")
	}
	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(assertion, &claims, func(t *jwt.Token) (any, error) {
		if thumbprintMatches(t.Header["x5t#S256"], c.Certificate, true) ||
			thumbprintMatches(t.Header["x5t"], c.Certificate, false) {
			return c.Certificate.PublicKey, nil
		}
		return nil, errKeyNotFound
	}, jwt.WithValidMethods([]string{"RS256", "PS256"}), jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.now), jwt.WithLeeway(5*time.Minute))
	switch {
	case errors.Is(err, errKeyNotFound):
		return newErr("invalid_client", 700027, "Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: unknown]")
	case errors.Is(err, jwt.ErrTokenExpired), errors.Is(err, jwt.ErrTokenNotValidYet):
		return newErr("invalid_client", 700024, "Client assertion is not within its valid time range.")
	case err != nil:
		return newErr("invalid_client", 700027, "Client assertion failed signature validation.")
	case !strings.EqualFold(claims.Issuer, c.ID) || !strings.EqualFold(claims.Subject, c.ID):
		return newErr("invalid_client", 700021, "Client assertion application identifier doesn't match 'client_id' parameter.")
	}
	for _, aud := range claims.Audience {
		if s.tokenEndpointOf(aud, ref) {
			return nil
		}
	}
	return newErr("invalid_client", 700027, "Client assertion failed signature validation. [Reason - The audience claim does not match this tenant's token endpoint.]")
}

// thumbprintMatches compares a JWT thumbprint header with the certificate. Encodings
// vary in the wild (MSAL uses padded standard base64 where RFC 7515 says base64url), so
// any of them is accepted.
func thumbprintMatches(header any, cert *x509.Certificate, sha256Thumb bool) bool {
	v, ok := header.(string)
	if !ok || v == "" {
		return false
	}
	var want []byte
	if sha256Thumb {
		sum := sha256.Sum256(cert.Raw)
		want = sum[:]
	} else {
		sum := sha1.Sum(cert.Raw)
		want = sum[:]
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if got, err := enc.DecodeString(v); err == nil && subtle.ConstantTimeCompare(got, want) == 1 {
			return true
		}
	}
	return false
}

// tokenEndpointOf reports whether aud is this simulator's token endpoint (v2 or v1) for
// the tenant the request went to, however the tenant is spelled.
func (s *Sim) tokenEndpointOf(aud string, ref tenantRef) bool {
	u, err := url.Parse(aud)
	if err != nil || u.Scheme != "https" || !strings.EqualFold(u.Host, s.host) {
		return false
	}
	seg, rest, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if rest != "oauth2/v2.0/token" && rest != "oauth2/token" {
		return false
	}
	s.mu.Lock()
	audRef := s.resolveTenant(seg)
	s.mu.Unlock()
	if ref.shared || audRef.shared {
		return audRef.known()
	}
	return audRef.t != nil && ref.t != nil && audRef.t.id == ref.t.id
}

func (s *Sim) grantAuthCode(rc *reqCtx, c *Client, authn string, ref tenantRef, form url.Values) (tokenResponse, *aadError) {
	code := form.Get("code")
	if code == "" {
		return tokenResponse{}, errMissingParam("code")
	}
	redirect, verifier := form.Get("redirect_uri"), form.Get("code_verifier")
	now := s.now()

	s.mu.Lock()
	ac := s.codes[code]
	var t *tenant
	if ac != nil {
		t = s.tenants[ac.tenantID]
	}
	var e *aadError
	switch {
	case ac == nil && strings.HasPrefix(code, "1.AAAA"):
		e = newErr("invalid_grant", 70000, "The provided value for the 'code' parameter is not valid.")
	case ac == nil:
		e = errMalformed()
	case ac.used:
		e = newErr("invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
	case now.Sub(ac.issued) > authCodeLifetime:
		e = newErr("invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.")
	case !strings.EqualFold(ac.clientID, c.ID):
		e = newErr("invalid_grant", 70000, "The provided value for the 'code' parameter is not valid. The code was issued to a different client.")
	case ref.t != nil && ref.t.id != ac.tenantID:
		e = newErr("invalid_grant", 70000, "The provided value for the 'code' parameter is not valid. The code was issued for a different tenant.")
	case redirect != ac.redirectURI:
		e = newErr("invalid_grant", 500112, "The reply address '%s' does not match the reply address '%s' provided when requesting Authorization code.", redirect, ac.redirectURI)
	case ac.challenge != "" && verifier == "":
		e = newErr("invalid_grant", 50148, "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.")
	case ac.challenge != "" && !pkceMatches(ac.method, ac.challenge, verifier):
		e = newErr("invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
	case !t.userAccess:
		e = errNoAccess(t, c)
	default:
		ac.used = true
	}
	s.mu.Unlock()
	if e != nil {
		return tokenResponse{}, e
	}

	asked := parseScopes(ac.scopes)
	scope := form.Get("scope")
	if scope == "" {
		scope = ac.scopes
	}
	q := parseScopes(scope)
	return s.mintUser(rc, userGrant{
		client:     c,
		authn:      authn,
		tenant:     t,
		scopes:     q,
		authTime:   ac.issued,
		nonce:      ac.nonce,
		wantRT:     asked.offline || q.offline,
		clientInfo: form.Get("client_info") == "1",
	})
}

func pkceMatches(method, challenge, verifier string) bool {
	if method == "plain" {
		return subtle.ConstantTimeCompare([]byte(challenge), []byte(verifier)) == 1
	}
	sum := sha256.Sum256([]byte(verifier))
	return subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) == 1
}

func (s *Sim) grantRefresh(rc *reqCtx, c *Client, authn string, ref tenantRef, form url.Values) (tokenResponse, *aadError) {
	presented := form.Get("refresh_token")
	if presented == "" {
		return tokenResponse{}, errMissingParam("refresh_token")
	}
	rc.note("rt=" + fingerprint(presented))
	if form.Get("scope") == "" {
		return tokenResponse{}, errMissingParam("scope")
	}
	q := parseScopes(form.Get("scope"))
	now := s.now()

	s.mu.Lock()
	t := s.forUser(ref)
	rt := s.rts[presented]
	var e *aadError
	switch {
	case rt == nil:
		e = errMalformed()
	case !strings.EqualFold(rt.clientID, c.ID):
		e = errClientMismatch()
	default:
		e = s.rtProblem(rt, now, q.audience())
	}
	switch {
	case e != nil:
	case !t.userAccess:
		e = errNoAccess(t, c)
	case t.failCode != 0:
		e = tenantFailure(t, c, q.audience(), now)
	case s.ctl.consent:
		e = errConsent(c)
	default:
		rt.redeemed = true
		s.stats.RefreshTokensRedeemed++
	}
	s.mu.Unlock()
	if e != nil {
		return tokenResponse{}, e
	}
	return s.mintUser(rc, userGrant{
		client:     c,
		authn:      authn,
		tenant:     t,
		scopes:     q,
		authTime:   rt.authTime,
		wantRT:     true,
		clientInfo: form.Get("client_info") == "1",
		acrs:       challengeACRS(form.Get("claims")),
	})
}

// challengeACRS reads the authentication contexts a claims challenge asks for
// ({"access_token":{"acrs":{"essential":true,"value":"c1"}}}, or "values": [...]).
func challengeACRS(claims string) []string {
	var c struct {
		AccessToken struct {
			ACRS struct {
				Value  string   `json:"value"`
				Values []string `json:"values"`
			} `json:"acrs"`
		} `json:"access_token"`
	}
	if claims == "" || json.Unmarshal([]byte(claims), &c) != nil {
		return nil
	}
	out := c.AccessToken.ACRS.Values
	if v := c.AccessToken.ACRS.Value; v != "" {
		out = append(out, v)
	}
	return out
}

func (s *Sim) grantDeviceCode(rc *reqCtx, c *Client, authn string, form url.Values) (tokenResponse, *aadError) {
	code := form.Get("device_code")
	if code == "" {
		return tokenResponse{}, errMissingParam("device_code")
	}
	now := s.now()

	s.mu.Lock()
	dc := s.devices[code]
	var t *tenant
	if dc != nil {
		t = s.tenants[dc.tenantID]
	}
	var e *aadError
	switch {
	case dc == nil || !strings.EqualFold(dc.clientID, c.ID):
		e = newErr("invalid_grant", 70000, "The provided value for the input parameter 'device_code' is not valid.")
	case !now.Before(dc.expires):
		delete(s.devices, code)
		e = newErr("expired_token", 70020, "The provided value for the input parameter 'device_code' is not valid. This device code has expired.")
	default:
		dc.polls++
		if !dc.approved && s.ctl.autoApprove && dc.polls > 1 {
			dc.approved = true
		}
		switch {
		case !dc.approved:
			e = newErr("authorization_pending", 70016, "OAuth 2.0 device flow error. Authorization is pending. Continue polling.")
		case !t.userAccess:
			delete(s.devices, code)
			e = errNoAccess(t, c)
		default:
			delete(s.devices, code)
		}
	}
	s.mu.Unlock()
	if e != nil {
		return tokenResponse{}, e
	}
	q := parseScopes(dc.scopes)
	return s.mintUser(rc, userGrant{
		client:     c,
		authn:      authn,
		tenant:     t,
		scopes:     q,
		authTime:   now,
		wantRT:     q.offline,
		clientInfo: form.Get("client_info") == "1",
	})
}

func (s *Sim) grantClientCredentials(c *Client, authn string, ref tenantRef, form url.Values) (tokenResponse, *aadError) {
	if c.Public {
		return tokenResponse{}, newErr("invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
	}
	if ref.shared {
		return tokenResponse{}, newErr("invalid_request", 50059, "No tenant-identifying information found in either the request or implied by any provided credentials.")
	}
	// MSAL adds openid, profile and offline_access even here; Entra ignores them.
	var scopes []string
	for _, sc := range strings.Fields(form.Get("scope")) {
		if !oidcScopes[strings.ToLower(sc)] {
			scopes = append(scopes, sc)
		}
	}
	if len(scopes) != 1 || !strings.HasSuffix(scopes[0], "/.default") {
		return tokenResponse{}, newErr("invalid_scope", 1002012, "The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", strings.Join(scopes, " "))
	}
	res, _ := splitScope(scopes[0])
	resp, err := s.issueApp(c, authn, ref.t, res)
	if err != nil {
		return tokenResponse{}, newErr("server_error", 90033, "A transient error has occurred. Please try again.")
	}
	return resp, nil
}

// mintUser issues the tokens of a successful user grant.
func (s *Sim) mintUser(rc *reqCtx, g userGrant) (tokenResponse, *aadError) {
	resp, err := s.issueUser(g)
	if err != nil {
		return tokenResponse{}, newErr("server_error", 90033, "A transient error has occurred. Please try again.")
	}
	rc.note("tid=" + g.tenant.id)
	if resp.RefreshToken != "" {
		rc.note("new_rt=" + fingerprint(resp.RefreshToken))
	}
	return resp, nil
}
