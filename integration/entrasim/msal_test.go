package entrasim

import (
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"
)

// These tests drive the real MSAL Go clients against the simulator, unchanged except
// for the HTTP client that trusts its CA and instance discovery turned off.

func TestDeviceCodeFlow(t *testing.T) {
	s := newSim(t, Options{})
	for _, clientID := range []string{PublicClientID, ExchangeClientID} {
		t.Run(clientID, func(t *testing.T) {
			s.ResetStats()
			app := newPublic(t, s, clientID, HomeTenantDomain, nil)
			ctx := testCtx(t)
			dc, err := app.AcquireTokenByDeviceCode(ctx, []string{PartnerCenterScope})
			if err != nil {
				t.Fatal(err)
			}
			msg := regexp.MustCompile(`^To sign in, use a web browser to open the page https://127\.0\.0\.1:\d+/devicelogin and enter the code [A-Z2-9]{9} to authenticate\.$`)
			if !msg.MatchString(dc.Result.Message) || !strings.Contains(dc.Result.Message, dc.Result.UserCode) {
				t.Errorf("message %q", dc.Result.Message)
			}
			res, err := dc.AuthenticationResult(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := UserOID + "." + HomeTenantID; res.Account.HomeAccountID != want {
				t.Errorf("home account id %q, want %q", res.Account.HomeAccountID, want)
			}
			if res.Account.PreferredUsername != UserUPN {
				t.Errorf("username %q", res.Account.PreferredUsername)
			}
			c, err := s.ValidateAccessToken(res.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			if c.Audience != "https://api.partnercenter.microsoft.com" || !slices.Equal(c.Scopes, []string{"user_impersonation"}) ||
				c.TenantID != HomeTenantID || c.UPN != UserUPN || c.AppID != clientID || !slices.Contains(c.AMR, "mfa") {
				t.Errorf("claims %+v", c)
			}
			st := s.Stats()
			// Auto-approval answers the first poll with authorization_pending.
			if st.Requests["devicecode"] != 1 || st.Grants["device_code"] != 2 || st.Errors[70016] != 1 || st.RefreshTokensIssued != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestDeviceCodeWaitsForApproval(t *testing.T) {
	s := newSim(t, Options{})
	s.ApproveDeviceCodes(false)
	app := newPublic(t, s, PublicClientID, "organizations", nil)
	ctx := testCtx(t)
	dc, err := app.AcquireTokenByDeviceCode(ctx, []string{GraphScope})
	if err != nil {
		t.Fatal(err)
	}
	if rec, ok := s.LastDeviceCode(); !ok || rec.UserCode != dc.Result.UserCode || rec.ClientID != PublicClientID {
		t.Fatalf("last device code %+v", rec)
	}
	done := make(chan error, 1)
	go func() {
		_, err := dc.AuthenticationResult(ctx)
		done <- err
	}()
	for s.Stats().Grants["device_code"] < 2 {
		select {
		case err := <-done:
			t.Fatalf("finished before approval: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	// The user enters the code on the verification page, in lower case with a dash.
	code := strings.ToLower(dc.Result.UserCode[:4] + "-" + dc.Result.UserCode[4:])
	resp, err := s.HTTPClient().PostForm(dc.Result.VerificationURL, url.Values{"otc": {code}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("devicelogin answered %d", resp.StatusCode)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Errors[70016] < 2 {
		t.Errorf("want several authorization_pending answers, stats %+v", st)
	}
}

func TestAuthCodeWithPKCE(t *testing.T) {
	s := newSim(t, Options{})
	app := newPublic(t, s, PublicClientID, HomeTenantID, nil)
	verifier, challenge := pkce()
	redirect := "http://localhost:8765"
	loc := authorize(t, s, HomeTenantID, authCodeParams(PublicClientID, redirect, challenge, AzureDevOpsScope))
	if got := loc.Scheme + "://" + loc.Host; got != redirect || loc.Query().Get("state") != "state-123" {
		t.Fatalf("redirected to %s", loc)
	}
	rec, ok := s.LastAuthorize()
	if !ok || rec.RedirectURI != redirect || rec.State != "state-123" || rec.CodeChallenge != challenge ||
		rec.Method != "S256" || rec.ClientID != PublicClientID || !slices.Contains(rec.Scopes, AzureDevOpsScope) {
		t.Fatalf("authorize record %+v", rec)
	}
	ctx := testCtx(t)
	res, err := app.AcquireTokenByAuthCode(ctx, loc.Query().Get("code"), redirect, []string{AzureDevOpsScope}, public.WithChallenge(verifier))
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.ValidateAccessToken(res.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if c.Audience != "499b84ac-1321-427f-aa17-267ca6975798" {
		t.Errorf("audience %q", c.Audience)
	}
	if res.IDToken.Oid != UserOID || res.IDToken.TenantID != HomeTenantID || res.IDToken.Audience != PublicClientID {
		t.Errorf("id token %+v", res.IDToken)
	}

	// The same code a second time.
	_, err = app.AcquireTokenByAuthCode(ctx, loc.Query().Get("code"), redirect, []string{AzureDevOpsScope}, public.WithChallenge(verifier))
	if _, e := callErr(t, err); e.Error != "invalid_grant" || e.ErrorCodes[0] != 54005 {
		t.Errorf("reused code: %+v", e)
	}
}

func TestInteractiveFormPost(t *testing.T) {
	s := newSim(t, Options{})
	app := newPublic(t, s, PublicClientID, "organizations", nil)
	ctx := testCtx(t)
	type browsed struct {
		status int
		body   []byte
		err    error
	}
	seen := make(chan browsed, 1)
	res, err := app.AcquireTokenInteractive(ctx, []string{PartnerCenterScope},
		public.WithRedirectURI("http://localhost"),
		public.WithOpenURL(func(u string) error {
			go func() {
				status, body, err := s.Browse(ctx, u)
				seen <- browsed{status, body, err}
			}()
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	b := <-seen
	if b.err != nil || b.status != http.StatusOK || !strings.Contains(string(b.body), "Authentication complete") {
		t.Fatalf("browser saw %d %q %v", b.status, b.body, b.err)
	}
	rec, _ := s.LastAuthorize()
	if rec.ResponseMode != "form_post" || rec.Method != "S256" || rec.State == "" {
		t.Errorf("authorize record %+v", rec)
	}
	if res.Account.HomeAccountID != UserOID+"."+HomeTenantID {
		t.Errorf("account %+v", res.Account)
	}
}

func newConfidential(t *testing.T, s *Sim, clientID, tenant string, cred confidential.Credential, c *memCache) confidential.Client {
	t.Helper()
	opts := []confidential.Option{
		confidential.WithHTTPClient(s.HTTPClient()),
		confidential.WithInstanceDiscovery(false),
	}
	if c != nil {
		opts = append(opts, confidential.WithCache(c))
	}
	app, err := confidential.New(s.URL()+"/"+tenant, clientID, cred, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return app
}

func certCredential(t *testing.T, s *Sim) confidential.Credential {
	t.Helper()
	pemData, err := os.ReadFile(s.CertClientPEMFile())
	if err != nil {
		t.Fatal(err)
	}
	certs, key, err := confidential.CertFromPEM(pemData, "")
	if err != nil {
		t.Fatal(err)
	}
	cred, err := confidential.NewCredFromCert(certs, key)
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

func TestConfidentialClients(t *testing.T) {
	s := newSim(t, Options{})
	s.SetTokenLifetime(4 * time.Minute) // stale for MSAL at once, so silent calls refresh
	secret, err := confidential.NewCredFromSecret(ClientSecret)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, clientID string
		cred           confidential.Credential
	}{
		{"secret", ConfidentialClientID, secret},
		{"certificate", CertClientID, certCredential(t, s)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			// App-only token in the customer tenant.
			app := newConfidential(t, s, tc.clientID, CustomerTenantDomain, tc.cred, nil)
			res, err := app.AcquireTokenByCredential(ctx, []string{GraphScope})
			if err != nil {
				t.Fatal(err)
			}
			c, err := s.ValidateAccessToken(res.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			if !c.AppOnly || c.TenantID != CustomerTenantID || c.AppID != tc.clientID || c.Audience != "https://graph.microsoft.com" || c.UPN != "" {
				t.Errorf("app token claims %+v", c)
			}

			// User sign-in with auth code and PKCE, then silent refresh at home and in
			// the customer tenant.
			mc := &memCache{}
			app = newConfidential(t, s, tc.clientID, HomeTenantID, tc.cred, mc)
			verifier, challenge := pkce()
			redirect := "http://localhost:8401"
			loc := authorize(t, s, HomeTenantID, authCodeParams(tc.clientID, redirect, challenge, PartnerCenterScope))
			res, err = app.AcquireTokenByAuthCode(ctx, loc.Query().Get("code"), redirect, []string{PartnerCenterScope}, confidential.WithChallenge(verifier))
			if err != nil {
				t.Fatal(err)
			}
			first := mc.refreshToken(t)
			before := s.Stats().RefreshTokensRedeemed
			for _, tenant := range []string{HomeTenantID, CustomerTenantID} {
				res, err = app.AcquireTokenSilent(ctx, []string{PartnerCenterScope},
					confidential.WithSilentAccount(res.Account), confidential.WithTenantID(tenant))
				if err != nil {
					t.Fatalf("silent in %s: %v", tenant, err)
				}
				if c, err := s.ValidateAccessToken(res.AccessToken); err != nil || c.TenantID != tenant || c.UPN != UserUPN {
					t.Errorf("silent in %s: claims %+v, %v", tenant, c, err)
				}
			}
			if got := s.Stats().RefreshTokensRedeemed - before; got != 2 {
				t.Errorf("%d refresh tokens redeemed, want 2", got)
			}
			if mc.refreshToken(t) == first {
				t.Error("refresh token did not rotate")
			}
		})
	}
}

func TestSilentRefreshPublic(t *testing.T) {
	s := newSim(t, Options{})
	s.SetTokenLifetime(4 * time.Minute)
	mc := &memCache{}
	app := newPublic(t, s, PublicClientID, HomeTenantID, mc)
	login := deviceLogin(t, app, PartnerCenterScope)
	rt1 := mc.refreshToken(t)
	ctx := testCtx(t)

	for i, tenant := range []string{HomeTenantID, CustomerTenantID, CustomerTenantDomain} {
		res, err := app.AcquireTokenSilent(ctx, []string{PartnerCenterScope},
			public.WithSilentAccount(login.Account), public.WithTenantID(tenant))
		if err != nil {
			t.Fatalf("silent in %s: %v", tenant, err)
		}
		c, err := s.ValidateAccessToken(res.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		wantTID := HomeTenantID
		if i > 0 {
			wantTID = CustomerTenantID
		}
		if c.TenantID != wantTID || c.ObjectID != UserOID {
			t.Errorf("silent in %s: claims %+v", tenant, c)
		}
	}
	rt2 := mc.refreshToken(t)
	if rt2 == rt1 || len(rt2) < 300 {
		t.Errorf("refresh token did not rotate or is short (%d chars)", len(rt2))
	}
	// Entra keeps the old token valid.
	if !s.RefreshTokenValid(rt1) || !s.RefreshTokenValid(rt2) {
		t.Error("old or new refresh token no longer valid")
	}
	if st := s.Stats(); st.RefreshTokensRedeemed != 3 || st.RefreshTokensIssued != 4 {
		t.Errorf("stats %+v", st)
	}
}

func TestRefreshFailuresThroughMSAL(t *testing.T) {
	for _, tc := range []struct {
		name     string
		break_   func(s *Sim)
		code     int
		suberror string
	}{
		{"expired", (*Sim).ExpireRefreshTokens, 700082, ""},
		{"revoked", (*Sim).RevokeRefreshTokens, 50173, ""},
		{"mfa", func(s *Sim) { s.RequireMFA(true) }, 50076, "basic_action"},
		{"consent", func(s *Sim) { s.RequireConsent(true) }, 65001, "consent_required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, Options{})
			s.SetTokenLifetime(4 * time.Minute)
			mc := &memCache{}
			app := newPublic(t, s, PublicClientID, HomeTenantID, mc)
			login := deviceLogin(t, app, PartnerCenterScope)
			rt := mc.refreshToken(t)
			tc.break_(s)
			if s.RefreshTokenValid(rt) {
				t.Error("RefreshTokenValid still true")
			}
			_, err := app.AcquireTokenSilent(testCtx(t), []string{PartnerCenterScope}, public.WithSilentAccount(login.Account))
			status, e := callErr(t, err)
			if status != http.StatusBadRequest || e.Error != "invalid_grant" || !slices.Equal(e.ErrorCodes, []int{tc.code}) || e.Suberror != tc.suberror {
				t.Fatalf("got %d %+v", status, e)
			}
			descr := regexp.MustCompile(`^AADSTS` + regexp.QuoteMeta(strconv.Itoa(tc.code)) + `: [^\r\n]+\r\nTrace ID: ([0-9a-f-]{36})\r\nCorrelation ID: ([0-9a-f-]{36})\r\nTimestamp: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ)$`)
			m := descr.FindStringSubmatch(e.ErrorDescription)
			if m == nil || m[1] != e.TraceID || m[2] != e.CorrelationID || m[3] != e.Timestamp {
				t.Errorf("description %q does not match trace %s, correlation %s, timestamp %s", e.ErrorDescription, e.TraceID, e.CorrelationID, e.Timestamp)
			}
			if e.ErrorURI != s.URL()+"/error?code="+strconv.Itoa(tc.code) {
				t.Errorf("error_uri %q", e.ErrorURI)
			}

			// A new interactive sign-in always mends it (consent: once granted).
			s.RequireConsent(false)
			mc2 := &memCache{}
			app2 := newPublic(t, s, PublicClientID, HomeTenantID, mc2)
			login2 := deviceLogin(t, app2, PartnerCenterScope)
			if !s.RefreshTokenValid(mc2.refreshToken(t)) {
				t.Error("refresh token of a new sign-in is not valid")
			}
			if _, err := app2.AcquireTokenSilent(testCtx(t), []string{PartnerCenterScope}, public.WithSilentAccount(login2.Account)); err != nil {
				t.Errorf("refresh after new sign-in: %v", err)
			}
		})
	}
}

func TestMSALConfigurationErrors(t *testing.T) {
	s := newSim(t, Options{})
	ctx := testCtx(t)

	bad, _ := confidential.NewCredFromSecret("wrong")
	_, err := newConfidential(t, s, ConfidentialClientID, HomeTenantID, bad, nil).AcquireTokenByCredential(ctx, []string{GraphScope})
	if status, e := callErr(t, err); status != http.StatusUnauthorized || e.Error != "invalid_client" || e.ErrorCodes[0] != 7000215 {
		t.Errorf("bad secret: %d %+v", status, e)
	}

	// MSAL fetches the openid-configuration of the tenant first; Entra refuses there.
	_, err = newPublic(t, s, PublicClientID, "unknown.onmicrosoft.com", nil).AcquireTokenByDeviceCode(ctx, []string{GraphScope})
	if status, e := callErr(t, err); status != http.StatusBadRequest || e.Error != "invalid_tenant" || e.ErrorCodes[0] != 90002 {
		t.Errorf("unknown tenant: %d %+v", status, e)
	}

	_, err = newPublic(t, s, "11111111-2222-4333-8444-555555555555", HomeTenantID, nil).AcquireTokenByDeviceCode(ctx, []string{GraphScope})
	if status, e := callErr(t, err); status != http.StatusBadRequest || e.Error != "unauthorized_client" || e.ErrorCodes[0] != 700016 {
		t.Errorf("unknown client: %d %+v", status, e)
	}
}
