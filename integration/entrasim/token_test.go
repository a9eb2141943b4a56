package entrasim

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"github.com/golang-jwt/jwt/v5"
)

func TestTokenErrors(t *testing.T) {
	s := newSim(t, Options{})
	s.AddClient(Client{ID: "0f1e2d3c-0000-4000-8000-00000000a004", Secret: "expired-secret", SecretExpired: true})
	public := signIn(t, s, PublicClientID, HomeTenantID, PartnerCenterScope)

	// A fresh code for each auth code case.
	code := func(clientID, redirect, challenge string) string {
		return authorize(t, s, HomeTenantID, authCodeParams(clientID, redirect, challenge, GraphScope)).Query().Get("code")
	}
	verifier, challenge := pkce()
	codeForm := func(c, redirect, verifier string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "client_id": {PublicClientID}, "code": {c},
			"redirect_uri": {redirect}, "code_verifier": {verifier}, "scope": {GraphScope}}
	}
	cc := func(clientID, secret, scope string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}, "scope": {scope}}
	}

	for _, tc := range []struct {
		name     string
		tenant   string
		form     url.Values
		status   int
		err      string
		code     int
		suberror string
	}{
		{"missing grant_type", HomeTenantID, url.Values{"client_id": {PublicClientID}}, 400, "invalid_request", 900144, ""},
		{"unsupported grant", HomeTenantID, url.Values{"grant_type": {"password"}, "client_id": {PublicClientID}}, 400, "unsupported_grant_type", 70003, ""},
		{"missing client_id", HomeTenantID, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {public.RefreshToken}}, 400, "invalid_request", 900144, ""},
		{"unknown tenant", "nowhere.onmicrosoft.com", refreshForm(PublicClientID, public.RefreshToken, GraphScope), 400, "invalid_request", 90002, ""},
		{"unknown client", HomeTenantID, refreshForm("11111111-2222-4333-8444-555555555555", public.RefreshToken, GraphScope), 400, "unauthorized_client", 700016, ""},
		{"public client with secret", HomeTenantID, withParam(refreshForm(PublicClientID, public.RefreshToken, GraphScope), "client_secret", "x"), 401, "invalid_client", 700025, ""},
		{"confidential without credential", HomeTenantID, refreshForm(ConfidentialClientID, public.RefreshToken, GraphScope), 401, "invalid_client", 7000218, ""},
		{"bad secret", HomeTenantID, cc(ConfidentialClientID, "wrong", GraphScope), 401, "invalid_client", 7000215, ""},
		{"expired secret", HomeTenantID, cc("0f1e2d3c-0000-4000-8000-00000000a004", "expired-secret", GraphScope), 401, "invalid_client", 7000222, ""},
		{"malformed refresh token", HomeTenantID, refreshForm(PublicClientID, "not-a-token", GraphScope), 400, "invalid_grant", 9002313, ""},
		{"missing scope", HomeTenantID, withParam(refreshForm(PublicClientID, public.RefreshToken), "scope", ""), 400, "invalid_request", 900144, ""},
		{"client mismatch", HomeTenantID, refreshForm(ExchangeClientID, public.RefreshToken, GraphScope), 400, "invalid_grant", 700007, ""},
		{"tenant without access", OtherTenantDomain, refreshForm(PublicClientID, public.RefreshToken, GraphScope), 400, "invalid_grant", 50020, ""},
		{"client credentials at organizations", "organizations", cc(ConfidentialClientID, ClientSecret, GraphScope), 400, "invalid_request", 50059, ""},
		{"client credentials without .default", HomeTenantID, cc(ConfidentialClientID, ClientSecret, "https://graph.microsoft.com/User.Read"), 400, "invalid_scope", 1002012, ""},
		{"client credentials for public client", HomeTenantID, withParam(cc(PublicClientID, "", GraphScope), "client_secret", ""), 401, "invalid_client", 7000218, ""},
		{"unknown device code", HomeTenantID, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {PublicClientID}, "device_code": {"DAQABAAEAAADnope"}}, 400, "invalid_grant", 70000, ""},
		{"malformed code", HomeTenantID, codeForm("garbage", "http://localhost:1", verifier), 400, "invalid_grant", 9002313, ""},
		{"unknown code", HomeTenantID, codeForm("1.AAAAunknown", "http://localhost:1", verifier), 400, "invalid_grant", 70000, ""},
		{"wrong verifier", HomeTenantID, codeForm(code(PublicClientID, "http://localhost:1", challenge), "http://localhost:1", verifier+"x"), 400, "invalid_grant", 501481, ""},
		{"missing verifier", HomeTenantID, codeForm(code(PublicClientID, "http://localhost:1", challenge), "http://localhost:1", ""), 400, "invalid_grant", 50148, ""},
		{"redirect mismatch", HomeTenantID, codeForm(code(PublicClientID, "http://localhost:1", challenge), "http://localhost:2", verifier), 400, "invalid_grant", 500112, ""},
		{"code of another client", HomeTenantID, codeForm(code(ExchangeClientID, "http://localhost:1", challenge), "http://localhost:1", verifier), 400, "invalid_grant", 70000, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := postToken(t, s, tc.tenant, tc.form)
			e := wantError(t, resp, body, tc.status, tc.err, tc.code)
			if e.Suberror != tc.suberror {
				t.Errorf("suberror %q, want %q", e.Suberror, tc.suberror)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("content type %q", ct)
			}
		})
	}

	t.Run("GET", func(t *testing.T) {
		resp, err := s.HTTPClient().Get(s.URL() + "/" + HomeTenantID + "/oauth2/v2.0/token")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e entraError
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != 400 || e.ErrorCodes[0] != 900561 {
			t.Errorf("GET token: %d %+v %v", resp.StatusCode, e, err)
		}
	})

	t.Run("correlation id echoes client-request-id", func(t *testing.T) {
		const id = "6d5c4b3a-0000-4000-8000-000000000001"
		req, _ := http.NewRequest(http.MethodPost, s.URL()+"/"+HomeTenantID+"/oauth2/v2.0/token", strings.NewReader("grant_type=password"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("client-request-id", id)
		resp, err := s.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e entraError
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.CorrelationID != id || resp.Header.Get("x-ms-request-id") != e.TraceID {
			t.Errorf("correlation %q, trace %q, x-ms-request-id %q: %v", e.CorrelationID, e.TraceID, resp.Header.Get("x-ms-request-id"), err)
		}
	})

	t.Run("secret in basic auth", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, s.URL()+"/"+HomeTenantID+"/oauth2/v2.0/token",
			strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {GraphScope}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(ConfidentialClientID), url.QueryEscape(ClientSecret))
		resp, err := s.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("basic auth answered %d", resp.StatusCode)
		}
	})

	// The failures above leave the public refresh token usable, and each code failure
	// left its code unredeemed.
	resp, body := postToken(t, s, HomeTenantID, refreshForm(PublicClientID, public.RefreshToken, GraphScope))
	wantToken(t, resp, body)
	if st := s.Stats(); st.Errors[7000215] != 1 || st.Errors[90002] != 1 {
		t.Errorf("error counters %v", st.Errors)
	}
}

func withParam(v url.Values, k, val string) url.Values {
	out := url.Values{}
	for key, vals := range v {
		out[key] = slices.Clone(vals)
	}
	if val == "" {
		out.Del(k)
	} else {
		out.Set(k, val)
	}
	return out
}

func TestCodeIsSingleUse(t *testing.T) {
	s := newSim(t, Options{})
	verifier, challenge := pkce()
	loc := authorize(t, s, "organizations", authCodeParams(PublicClientID, "http://127.0.0.1:9000/cb", challenge, GraphScope))
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {PublicClientID}, "code": {loc.Query().Get("code")},
		"redirect_uri": {"http://127.0.0.1:9000/cb"}, "code_verifier": {verifier}, "scope": {GraphScope + " offline_access"}}
	resp, body := postToken(t, s, "organizations", form)
	tb := wantToken(t, resp, body)
	if tb.RefreshToken == "" || tb.IDToken != "" {
		t.Errorf("want a refresh token and no id token (openid not asked at the token endpoint): %+v", tb)
	}
	resp, body = postToken(t, s, "organizations", form)
	wantError(t, resp, body, 400, "invalid_grant", 54005)
}

func TestTokenResponseShape(t *testing.T) {
	s := newSim(t, Options{})
	rt := signIn(t, s, PublicClientID, HomeTenantID, PartnerCenterScope).RefreshToken

	for _, tc := range []struct {
		name, scope, wantScope, wantAud string
		wantID                          bool
	}{
		{"two resources: the first wins", "https://graph.microsoft.com/User.Read https://api.partnercenter.microsoft.com/user_impersonation openid offline_access",
			"https://graph.microsoft.com/User.Read openid", "https://graph.microsoft.com", true},
		{".default lists what it stands for", GraphScope + " offline_access profile email",
			"https://graph.microsoft.com/User.Read https://graph.microsoft.com/.default profile email", "https://graph.microsoft.com", false},
		{"bare scope is graph", "User.Read Mail.Read openid", "User.Read Mail.Read openid", "https://graph.microsoft.com", true},
		{"guid resource", AzureDevOpsScope + " openid profile offline_access",
			"499b84ac-1321-427f-aa17-267ca6975798/user_impersonation " + AzureDevOpsScope + " openid profile", "499b84ac-1321-427f-aa17-267ca6975798", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := postToken(t, s, HomeTenantID, withParam(refreshForm(PublicClientID, rt), "scope", tc.scope))
			tb := wantToken(t, resp, body)
			if tb.Scope != tc.wantScope || strings.Contains(tb.Scope, "offline_access") {
				t.Errorf("scope %q, want %q", tb.Scope, tc.wantScope)
			}
			c, err := s.ValidateAccessToken(tb.AccessToken)
			if err != nil || c.Audience != tc.wantAud {
				t.Errorf("audience %q, want %q (%v)", c.Audience, tc.wantAud, err)
			}
			if (tb.IDToken != "") != tc.wantID {
				t.Errorf("id token present %v, want %v", tb.IDToken != "", tc.wantID)
			}
		})
	}

	resp, body := postToken(t, s, HomeTenantID, refreshForm(PublicClientID, rt, PartnerCenterScope))
	tb := wantToken(t, resp, body)
	if tb.TokenType != "Bearer" || tb.ExpiresIn != 3600 || tb.ExtExpiresIn != 3600 || tb.RefreshIn != 0 || len(tb.RefreshToken) < 300 {
		t.Errorf("response %+v", tb)
	}
	ci, err := base64.RawURLEncoding.DecodeString(tb.ClientInfo)
	if err != nil || string(ci) != `{"uid":"`+UserOID+`","utid":"`+HomeTenantID+`"}` {
		t.Errorf("client_info %q: %v", ci, err)
	}
	var raw map[string]any
	_ = json.Unmarshal(body, &raw)
	for _, k := range []string{"token_type", "scope", "expires_in", "ext_expires_in", "access_token", "refresh_token", "id_token", "client_info"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("response lacks %s", k)
		}
	}
	// The access token's header as Entra writes it.
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(tb.AccessToken, ".")[0])
	var h map[string]string
	if err := json.Unmarshal(hdr, &h); err != nil || h["alg"] != "RS256" || h["typ"] != "JWT" || h["kid"] == "" || h["x5t"] != h["kid"] {
		t.Errorf("header %s", hdr)
	}

	withoutInfo := withParam(refreshForm(PublicClientID, rt, PartnerCenterScope), "client_info", "")
	resp, body = postToken(t, s, HomeTenantID, withoutInfo)
	if tb := wantToken(t, resp, body); tb.ClientInfo != "" {
		t.Error("client_info sent without client_info=1")
	}

	s.SetTokenLifetime(10 * time.Minute)
	resp, body = postToken(t, s, HomeTenantID, refreshForm(PublicClientID, rt, PartnerCenterScope))
	if tb := wantToken(t, resp, body); tb.ExpiresIn != 600 || tb.RefreshIn != 0 {
		t.Errorf("10m lifetime: %+v", tb)
	}
	s.SetTokenLifetime(3 * time.Hour)
	resp, body = postToken(t, s, HomeTenantID, refreshForm(PublicClientID, rt, PartnerCenterScope))
	if tb := wantToken(t, resp, body); tb.ExpiresIn != 10800 || tb.RefreshIn != 5400 {
		t.Errorf("3h lifetime: %+v", tb)
	}
}

func TestAMR(t *testing.T) {
	s := newSim(t, Options{})
	s.SetAMR([]string{"pwd"})
	tb := signIn(t, s, PublicClientID, HomeTenantID, PartnerCenterScope)
	c, err := s.ValidateAccessToken(tb.AccessToken)
	if err != nil || !slices.Equal(c.AMR, []string{"pwd"}) {
		t.Errorf("amr %v (%v)", c.AMR, err)
	}
}

// testClock is a settable clock for Options.Now.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestClockDrivesExpiry(t *testing.T) {
	clock := &testClock{t: time.Now()}
	s := newSim(t, Options{Now: clock.Now})
	tb := signIn(t, s, PublicClientID, HomeTenantID, PartnerCenterScope)
	if _, err := s.ValidateAccessToken(tb.AccessToken); err != nil {
		t.Fatal(err)
	}
	clock.Add(61 * time.Minute)
	if _, err := s.ValidateAccessToken(tb.AccessToken); !errors.Is(err, jwt.ErrTokenExpired) {
		t.Errorf("an hour later: %v, want expired", err)
	}
	// 89 days of inactivity are fine; the new token starts a new window.
	clock.Add(89 * 24 * time.Hour)
	resp, body := postToken(t, s, HomeTenantID, refreshForm(PublicClientID, tb.RefreshToken, PartnerCenterScope))
	fresh := wantToken(t, resp, body)
	clock.Add(2 * 24 * time.Hour)
	resp, body = postToken(t, s, HomeTenantID, refreshForm(PublicClientID, tb.RefreshToken, PartnerCenterScope))
	e := wantError(t, resp, body, 400, "invalid_grant", 700082)
	if !strings.Contains(e.ErrorDescription, "was inactive for 91.") {
		t.Errorf("description %q", e.ErrorDescription)
	}
	if !s.RefreshTokenValid(fresh.RefreshToken) || s.RefreshTokenValid(tb.RefreshToken) {
		t.Error("validity does not follow the clock")
	}
}

func TestStrictRotation(t *testing.T) {
	s := newSim(t, Options{})
	rt1 := signIn(t, s, PublicClientID, HomeTenantID, PartnerCenterScope).RefreshToken

	// By default the old token stays valid, as in Entra.
	resp, body := postToken(t, s, HomeTenantID, refreshForm(PublicClientID, rt1, PartnerCenterScope))
	rt2 := wantToken(t, resp, body).RefreshToken
	resp, body = postToken(t, s, HomeTenantID, refreshForm(PublicClientID, rt1, PartnerCenterScope))
	wantToken(t, resp, body)

	s.SetStrictRotation(true)
	if s.RefreshTokenValid(rt1) || !s.RefreshTokenValid(rt2) {
		t.Error("strict: rt1 should be invalid, rt2 valid")
	}
	resp, body = postToken(t, s, HomeTenantID, refreshForm(PublicClientID, rt1, PartnerCenterScope))
	wantError(t, resp, body, 400, "invalid_grant", 70000)
	resp, body = postToken(t, s, HomeTenantID, refreshForm(PublicClientID, rt2, PartnerCenterScope))
	wantToken(t, resp, body)
	resp, body = postToken(t, s, HomeTenantID, refreshForm(PublicClientID, rt2, PartnerCenterScope))
	wantError(t, resp, body, 400, "invalid_grant", 70000)

	// Under strict rotation, concurrent redemptions of one token: exactly one wins.
	rt := signIn(t, s, PublicClientID, HomeTenantID, PartnerCenterScope).RefreshToken
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 32 {
		wg.Go(func() {
			resp, err := s.HTTPClient().PostForm(s.URL()+"/"+HomeTenantID+"/oauth2/v2.0/token", refreshForm(PublicClientID, rt, GraphScope))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d concurrent redemptions succeeded under strict rotation, want 1", wins)
	}
}

func TestConcurrentRefresh(t *testing.T) {
	s := newSim(t, Options{Logf: func(string, ...any) {}})
	rt := signIn(t, s, PublicClientID, HomeTenantID, PartnerCenterScope).RefreshToken
	s.ResetStats()
	const n = 200
	var wg sync.WaitGroup
	issued := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			tenant := HomeTenantID
			if i%2 == 1 {
				tenant = CustomerTenantDomain
			}
			resp, err := s.HTTPClient().PostForm(s.URL()+"/"+tenant+"/oauth2/v2.0/token", refreshForm(PublicClientID, rt, PartnerCenterScope))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var tb tokenBody
			if err := json.NewDecoder(resp.Body).Decode(&tb); err != nil || resp.StatusCode != http.StatusOK {
				t.Errorf("status %d: %v", resp.StatusCode, err)
				return
			}
			if _, err := s.ValidateAccessToken(tb.AccessToken); err != nil {
				t.Error(err)
			}
			_ = s.Stats()
			issued <- tb.RefreshToken
		})
	}
	wg.Wait()
	close(issued)
	seen := map[string]bool{}
	for rt := range issued {
		seen[rt] = true
	}
	st := s.Stats()
	if len(seen) != n || st.Requests["token"] != n || st.Grants["refresh_token"] != n ||
		st.RefreshTokensRedeemed != n || st.RefreshTokensIssued != n {
		t.Errorf("%d distinct refresh tokens, stats %+v", len(seen), st)
	}
}

func TestFaults(t *testing.T) {
	s := newSim(t, Options{})
	rt := signIn(t, s, PublicClientID, HomeTenantID, PartnerCenterScope).RefreshToken
	form := refreshForm(PublicClientID, rt, PartnerCenterScope)

	s.FailNext(1, 500)
	resp, body := postToken(t, s, HomeTenantID, form)
	wantError(t, resp, body, 500, "server_error", 90033)
	resp, body = postToken(t, s, HomeTenantID, form)
	wantToken(t, resp, body)

	s.FailNext(2, 503)
	for range 2 {
		resp, body = postToken(t, s, HomeTenantID, form)
		wantError(t, resp, body, 503, "temporarily_unavailable", 90033)
	}
	resp, body = postToken(t, s, HomeTenantID, form)
	wantToken(t, resp, body)

	s.ThrottleNext(1, 1500*time.Millisecond)
	resp, body = postToken(t, s, HomeTenantID, form)
	wantError(t, resp, body, 429, "temporarily_unavailable", 90055)
	if ra := resp.Header.Get("Retry-After"); ra != "2" {
		t.Errorf("Retry-After %q, want 2", ra)
	}
	resp, body = postToken(t, s, HomeTenantID, form)
	wantToken(t, resp, body)

	// A hung request is answered never; the client's deadline ends it.
	s.HangNext(1)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+"/"+HomeTenantID+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	start := time.Now()
	if resp, err := s.HTTPClient().Do(req); !errors.Is(err, context.DeadlineExceeded) {
		if err == nil {
			resp.Body.Close()
		}
		t.Fatalf("hung request: %v, want deadline exceeded", err)
	}
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Errorf("hung request ended after %v", el)
	}
	resp, body = postToken(t, s, HomeTenantID, form)
	wantToken(t, resp, body)

	s.SetLatency(150 * time.Millisecond)
	start = time.Now()
	resp, body = postToken(t, s, HomeTenantID, form)
	wantToken(t, resp, body)
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Errorf("latency: answered after %v", el)
	}
	s.SetLatency(0)

	st := s.Stats()
	if st.Requests["token"] != 11 || st.Grants["refresh_token"] != 10 || st.RefreshTokensRedeemed != 5 {
		t.Errorf("stats %+v", st)
	}
}

func TestCloseReleasesHungRequests(t *testing.T) {
	s, err := Start(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s.HangNext(3)
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			resp, err := s.HTTPClient().PostForm(s.URL()+"/"+HomeTenantID+"/oauth2/v2.0/token", url.Values{"grant_type": {"refresh_token"}})
			if err == nil {
				resp.Body.Close()
			}
			errs <- err
		}()
	}
	for s.Stats().Requests["token"] < 3 {
		time.Sleep(5 * time.Millisecond)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close waits for hung requests")
	}
	for range 3 {
		if err := <-errs; err == nil {
			t.Error("a hung request got an answer")
		}
	}
}

// assertion builds a client assertion for CertClientID, changed by edit.
func assertion(t *testing.T, s *Sim, edit func(h map[string]any, c jwt.MapClaims) any) string {
	t.Helper()
	certs, key, err := confidential.CertFromPEM(s.CertClientPEM(), "")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := jwt.MapClaims{
		"aud": s.URL() + "/" + HomeTenantID + "/oauth2/v2.0/token",
		"iss": CertClientID, "sub": CertClientID, "jti": newGUID(),
		"nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodPS256, claims)
	sum := sha256.Sum256(certs[0].Raw)
	tok.Header["x5t#S256"] = base64.StdEncoding.EncodeToString(sum[:])
	signKey := any(key)
	if edit != nil {
		if k := edit(tok.Header, claims); k != nil {
			signKey = k
		}
	}
	signed, err := tok.SignedString(signKey)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func TestClientAssertion(t *testing.T) {
	s := newSim(t, Options{})
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		assertion string
		code      int // 0: success
	}{
		{"valid", assertion(t, s, nil), 0},
		{"x5t sha1 and RS256", rs256Assertion(t, s), 0},
		{"audience by domain", assertion(t, s, func(h map[string]any, c jwt.MapClaims) any {
			c["aud"] = s.URL() + "/" + HomeTenantDomain + "/oauth2/v2.0/token"
			return nil
		}), 0},
		{"signed by another key", assertion(t, s, func(h map[string]any, c jwt.MapClaims) any { return other }), 700027},
		{"unknown thumbprint", assertion(t, s, func(h map[string]any, c jwt.MapClaims) any {
			h["x5t#S256"] = base64.StdEncoding.EncodeToString(make([]byte, 32))
			return nil
		}), 700027},
		{"expired", assertion(t, s, func(h map[string]any, c jwt.MapClaims) any {
			c["exp"] = time.Now().Add(-time.Hour).Unix()
			return nil
		}), 700024},
		{"wrong issuer", assertion(t, s, func(h map[string]any, c jwt.MapClaims) any { c["iss"] = PublicClientID; return nil }), 700021},
		{"audience of another tenant", assertion(t, s, func(h map[string]any, c jwt.MapClaims) any {
			c["aud"] = s.URL() + "/" + CustomerTenantID + "/oauth2/v2.0/token"
			return nil
		}), 700027},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := postToken(t, s, HomeTenantID, url.Values{
				"grant_type": {"client_credentials"}, "client_id": {CertClientID}, "scope": {GraphScope},
				"client_assertion_type": {clientAssertionType}, "client_assertion": {tc.assertion},
			})
			if tc.code == 0 {
				wantToken(t, resp, body)
				return
			}
			wantError(t, resp, body, 401, "invalid_client", tc.code)
		})
	}
}

// rs256Assertion is the ADFS-style assertion: RS256 with a SHA-1 x5t.
func rs256Assertion(t *testing.T, s *Sim) string {
	t.Helper()
	_, key, err := confidential.CertFromPEM(s.CertClientPEM(), "")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"aud": s.URL() + "/" + HomeTenantID + "/oauth2/v2.0/token",
		"iss": CertClientID, "sub": CertClientID, "jti": newGUID(),
		"nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	})
	tok.Header["x5t"] = thumbprintSHA1(s.pki.clientCert)
	signed, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func TestCodesExpire(t *testing.T) {
	clock := &testClock{t: time.Now()}
	s := newSim(t, Options{Now: clock.Now})
	verifier, challenge := pkce()
	loc := authorize(t, s, HomeTenantID, authCodeParams(PublicClientID, "http://localhost:1", challenge, GraphScope))
	resp, err := s.HTTPClient().PostForm(s.URL()+"/"+HomeTenantID+"/oauth2/v2.0/devicecode", url.Values{"client_id": {PublicClientID}, "scope": {GraphScope}})
	if err != nil {
		t.Fatal(err)
	}
	var dc deviceCodeResponse
	err = json.NewDecoder(resp.Body).Decode(&dc)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(16 * time.Minute)

	resp, body := postToken(t, s, HomeTenantID, url.Values{"grant_type": {"authorization_code"}, "client_id": {PublicClientID},
		"code": {loc.Query().Get("code")}, "redirect_uri": {"http://localhost:1"}, "code_verifier": {verifier}, "scope": {GraphScope}})
	wantError(t, resp, body, 400, "invalid_grant", 70008)
	resp, body = postToken(t, s, HomeTenantID, url.Values{"grant_type": {"device_code"}, "client_id": {PublicClientID}, "device_code": {dc.DeviceCode}})
	wantError(t, resp, body, 400, "expired_token", 70020)
}
