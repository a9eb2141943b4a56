package entra_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"

	"github.com/pctoken/pctoken-helper/consent"
	"github.com/pctoken/pctoken-helper/entra"
	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/integration/entrasim"
)

const graph = "https://graph.microsoft.com/.default"

func startSim(t *testing.T) *entrasim.Sim {
	t.Helper()
	sim, err := entrasim.Start(entrasim.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	sim.ApproveDeviceCodes(true)
	return sim
}

func app(sim *entrasim.Sim, clientID string, cred *entra.Credential) entra.App {
	return entra.App{
		ClientID:      clientID,
		AuthorityHost: sim.URL(),
		HomeTenant:    "organizations",
		Credential:    cred,
		HTTPClient:    sim.HTTPClient(),
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// consented runs the device-code flow and returns its token (with the refresh token).
func consented(t *testing.T, sim *entrasim.Sim) entra.Token {
	t.Helper()
	var shown entra.DevicePrompt
	asked := time.Now()
	tok, err := app(sim, entrasim.PublicClientID, nil).DeviceCode(ctx(t), []string{graph, "offline_access"}, func(p entra.DevicePrompt) { shown = p })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(shown.Message, "enter the code") {
		t.Errorf("device code message %q", shown.Message)
	}
	// The simulator's codes live 15 minutes, as Entra's do: the expiry is the one it
	// announced (expires_in), counted from the request.
	if lo, hi := asked.Add(14*time.Minute), time.Now().Add(15*time.Minute); shown.ExpiresOn.Before(lo) || shown.ExpiresOn.After(hi) {
		t.Errorf("device code expires %v, want between %v and %v", shown.ExpiresOn, lo, hi)
	}
	if tok.RefreshToken == "" || tok.Account.HomeAccountID == "" || tok.Account.HomeTenantID != entrasim.HomeTenantID {
		t.Fatalf("consent token: %+v", tok.Account)
	}
	return tok
}

func TestRedeemRotatesAndReachesCustomerTenants(t *testing.T) {
	sim := startSim(t)
	sim.SetStrictRotation(true)
	c := consented(t, sim)
	a := app(sim, entrasim.PublicClientID, nil)
	a.HomeTenant = c.Account.HomeTenantID

	home, err := a.Redeem(ctx(t), c.RefreshToken, c.Account, "", []string{graph})
	if err != nil {
		t.Fatal(err)
	}
	if home.TenantID != entrasim.HomeTenantID || home.RefreshToken == "" || home.RefreshToken == c.RefreshToken {
		t.Fatalf("home redemption: tenant %q, rotated %v", home.TenantID, home.RefreshToken != c.RefreshToken)
	}
	for _, s := range home.Scopes {
		if s == "openid" || s == "profile" || s == "offline_access" {
			t.Errorf("OIDC scope %q reported as granted", s)
		}
	}
	// Strict rotation: only the newest refresh token works now.
	if _, err := a.Redeem(ctx(t), c.RefreshToken, c.Account, "", []string{graph}); failure.KindOf(err) != failure.ConsentNeeded {
		t.Fatalf("stale refresh token: %v", err)
	}
	cust, err := a.Redeem(ctx(t), home.RefreshToken, c.Account, entrasim.CustomerTenantID, []string{graph})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := sim.ValidateAccessToken(cust.AccessToken)
	if err != nil || claims.TenantID != entrasim.CustomerTenantID || cust.TenantID != entrasim.CustomerTenantID {
		t.Fatalf("customer token: tid %q / %q, %v", claims.TenantID, cust.TenantID, err)
	}
}

func TestRedeemUnknownAccountLearnsIt(t *testing.T) {
	sim := startSim(t)
	c := consented(t, sim)
	tok, err := app(sim, entrasim.PublicClientID, nil).Redeem(ctx(t), c.RefreshToken, entra.Account{}, "", []string{graph})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Account.HomeAccountID != c.Account.HomeAccountID || tok.Account.Username != entrasim.UserUPN || tok.RefreshToken == "" {
		t.Fatalf("import redemption: %+v", tok.Account)
	}
}

func TestAuthCodeWithPKCEForConfidentialClients(t *testing.T) {
	sim := startSim(t)
	certCred, err := entra.LoadCertificate(sim.CertClientPEMFile())
	if err != nil {
		t.Fatal(err)
	}
	for name, a := range map[string]entra.App{
		"public": app(sim, entrasim.PublicClientID, nil),
		"secret": app(sim, entrasim.ConfidentialClientID, &entra.Credential{Secret: entrasim.ClientSecret}),
		"cert":   app(sim, entrasim.CertClientID, certCred),
	} {
		t.Run(name, func(t *testing.T) {
			l, err := consent.Listen(consent.PortRange{First: 18400, Last: 18499})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			verifier, challenge, _ := consent.NewPKCE()
			state, _ := consent.NewState()
			u, err := a.AuthCodeURL(ctx(t), l.RedirectURI(), []string{graph}, state, challenge)
			if err != nil {
				t.Fatal(err)
			}
			go sim.Browse(ctx(t), u)
			code, err := l.Wait(ctx(t), state)
			if err != nil {
				t.Fatal(err)
			}
			rec, _ := sim.LastAuthorize()
			if rec.State != state || rec.CodeChallenge != challenge {
				t.Fatalf("authorize saw state %q challenge %q", rec.State, rec.CodeChallenge)
			}
			tok, err := a.RedeemCode(ctx(t), code, l.RedirectURI(), []string{graph}, verifier)
			if err != nil {
				t.Fatal(err)
			}
			if tok.RefreshToken == "" || !tok.HasMFA() {
				t.Fatalf("consent token lacks a refresh token or mfa: amr %v", tok.AMR)
			}
			a.HomeTenant = tok.Account.HomeTenantID
			if _, err := a.Redeem(ctx(t), tok.RefreshToken, tok.Account, entrasim.CustomerTenantID, []string{graph}); err != nil {
				t.Fatalf("silent redemption: %v", err)
			}
		})
	}
}

func TestFailuresAreClassified(t *testing.T) {
	sim := startSim(t)
	c := consented(t, sim)
	pub := app(sim, entrasim.PublicClientID, nil)
	redeem := func(a entra.App, tenant string) error {
		_, err := a.Redeem(ctx(t), c.RefreshToken, c.Account, tenant, []string{graph})
		return err
	}
	check := func(name string, err error, kind failure.Kind, aadsts string) {
		t.Helper()
		var e *failure.Error
		if !errors.As(err, &e) || e.Kind != kind || e.AADSTS != aadsts {
			t.Errorf("%s: got %#v, want kind %v AADSTS%s", name, err, kind, aadsts)
		}
		if err != nil && strings.Contains(err.Error(), c.RefreshToken) {
			t.Errorf("%s: the error shows the refresh token", name)
		}
	}
	check("unknown tenant", redeem(pub, "0f1e2d3c-0000-4000-8000-0000000000ff"), failure.Configuration, "90002")
	check("client mismatch", redeem(app(sim, entrasim.ConfidentialClientID, &entra.Credential{Secret: entrasim.ClientSecret}), ""), failure.Configuration, "700007")
	check("bad secret", redeem(app(sim, entrasim.ConfidentialClientID, &entra.Credential{Secret: "wrong"}), ""), failure.Configuration, "7000215")

	sim.FailNext(1, http.StatusServiceUnavailable)
	if err := redeem(pub, ""); failure.KindOf(err) != failure.Transient {
		t.Errorf("503: %v", err)
	}

	sim.RequireMFA(true)
	check("mfa", redeem(pub, ""), failure.ConsentNeeded, "50076")
	sim.RequireMFA(false)
	sim.ExpireRefreshTokens()
	check("expired", redeem(pub, ""), failure.ConsentNeeded, "700082")
	c = consented(t, sim)
	sim.RevokeRefreshTokens()
	check("revoked", redeem(pub, ""), failure.ConsentNeeded, "50173")
}

func TestHangingIdentityProviderEndsAsTransient(t *testing.T) {
	sim := startSim(t)
	c := consented(t, sim)
	sim.HangNext(1)
	short, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := app(sim, entrasim.PublicClientID, nil).Redeem(short, c.RefreshToken, c.Account, "", []string{graph})
	if failure.KindOf(err) != failure.Transient {
		t.Fatalf("hang: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("hang took %v", took)
	}
}

func TestDeviceCodeIsForPublicClients(t *testing.T) {
	sim := startSim(t)
	_, err := app(sim, entrasim.ConfidentialClientID, &entra.Credential{Secret: entrasim.ClientSecret}).DeviceCode(ctx(t), []string{graph}, func(entra.DevicePrompt) {})
	if failure.KindOf(err) != failure.Usage {
		t.Fatalf("device code with a secret: %v", err)
	}
}

func FuzzClassify(f *testing.F) {
	f.Add(400, []byte(`{"error":"invalid_grant","error_description":"AADSTS700082: expired\r\nTrace ID: x","error_codes":[700082]}`))
	f.Add(401, []byte(`{"error":"invalid_client","error_codes":[7000215]}`))
	f.Add(503, []byte(`<html>busy</html>`))
	f.Add(429, []byte(``))
	f.Add(400, []byte(`{"error_codes":[-1, 1e99]}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		err := entra.Classify(msalerrors.CallErr{
			Resp: &http.Response{StatusCode: status, Body: io.NopCloser(bytes.NewReader(body))},
			Err:  errors.New("http call failed"),
		})
		var e *failure.Error
		if !errors.As(err, &e) || e.Message == "" {
			t.Fatalf("unclassified: %#v", err)
		}
		if status >= 500 && status < 600 && e.AADSTS == "" && e.Kind != failure.Transient {
			t.Fatalf("status %d classified %v", status, e.Kind)
		}
	})
}

func TestUntrustedCertificateIsConfigurationAndSaysWhy(t *testing.T) {
	sim := startSim(t)
	a := app(sim, entrasim.PublicClientID, nil)
	a.HTTPClient = &http.Client{} // the system store, which does not hold the simulator's CA
	_, err := a.Redeem(ctx(t), "unused-refresh-token", entra.Account{}, "", []string{graph})
	if failure.KindOf(err) != failure.Configuration {
		t.Fatalf("untrusted certificate: %v (kind %v)", err, failure.KindOf(err))
	}
	if msg := err.Error(); !strings.Contains(msg, "x509:") || strings.Contains(msg, "\n") {
		t.Fatalf("the message should give the TLS reason on one line: %q", msg)
	}
}
