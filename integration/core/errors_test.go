package core

import (
	"strings"
	"testing"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/harness"
)

// consentConfidential consents profileName for the simulator's confidential client by
// auth code, the test binary playing the browser, with the secret on stdin.
func consentConfidential(t *testing.T, e *harness.Env, profileName string) {
	t.Helper()
	e.UseTestBinaryAsBrowser()
	// PCTOKEN_CLIENT_ID would beat the profile's client id in later runs.
	delete(e.Vars, "PCTOKEN_CLIENT_ID")
	res := e.RunStdin(entrasim.ClientSecret+"\n", "consent", "--profile", profileName,
		"--client-id", entrasim.ConfidentialClientID, "--client-secret-stdin", "--port-range", "18400-18999", "--timeout", "30s")
	wantExit(t, res, 0, "confidential consent")
}

// Refresh tokens that expired, were revoked or need MFA again end in exit 3 with the
// AADSTS code on stderr and in the JSON error, and the consent command as the remedy.
func TestConsentNeededErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		break_ func(*entrasim.Sim)
		aadsts string
	}{
		{"expired", (*entrasim.Sim).ExpireRefreshTokens, "AADSTS700082"},
		{"revoked", (*entrasim.Sim).RevokeRefreshTokens, "AADSTS50173"},
		{"mfa", func(s *entrasim.Sim) { s.RequireMFA(true) }, "AADSTS50076"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := harness.New(t)
			e.Consent("--profile", "contoso")
			tc.break_(e.Sim)
			res := e.Run("get", "--profile", "contoso", "--scope", "graph")
			wantExit(t, res, 3, "get with a dead refresh token")
			const remedy = "pctoken-helper consent --profile contoso"
			if !strings.Contains(res.Stderr, tc.aadsts) || !strings.Contains(res.Stderr, "hint: "+remedy) {
				t.Fatalf("stderr lacks %s or the remedy:\n%s", tc.aadsts, res.Stderr)
			}
			out := decodeError(t, res)
			if out.Error.AADSTS != tc.aadsts || out.Error.Code != "consent_required" || out.Error.Remedy != remedy {
				t.Fatalf("JSON error: %+v", out.Error)
			}
		})
	}
}

// Configuration errors exit 5, each with its AADSTS code.
func TestConfigurationErrors(t *testing.T) {
	t.Parallel()
	t.Run("bad secret", func(t *testing.T) {
		t.Parallel()
		e := harness.New(t)
		consentConfidential(t, e, "csp")
		e.Vars["PCTOKEN_CLIENT_SECRET"] = "not-the-secret"
		res := e.Run("get", "--profile", "csp", "--scope", "graph", "--force-refresh")
		wantExit(t, res, 5, "get with a wrong client secret")
		if out := decodeError(t, res); out.Error.AADSTS != "AADSTS7000215" || out.Error.Code != "configuration" {
			t.Fatalf("JSON error: %+v", out.Error)
		}
		if strings.Contains(res.Stdout+res.Stderr, "not-the-secret") || !strings.Contains(res.Stderr, "AADSTS7000215") {
			t.Fatalf("stderr: %s", res.Stderr)
		}
		// The stored secret still works once the wrong one is out of the way.
		delete(e.Vars, "PCTOKEN_CLIENT_SECRET")
		e.MustRun("get", "--profile", "csp", "--scope", "graph", "--force-refresh")
	})
	t.Run("unknown tenant", func(t *testing.T) {
		t.Parallel()
		e := harness.New(t)
		e.Consent()
		res := e.Run("get", "--scope", "graph", "--tenant", "0f1e2d3c-0000-4000-8000-0000000dead1")
		wantExit(t, res, 5, "get for an unknown tenant")
		if out := decodeError(t, res); out.Error.AADSTS != "AADSTS90002" || out.Error.Code != "configuration" {
			t.Fatalf("JSON error: %+v\nstderr: %s", out.Error, res.Stderr)
		}
		if !strings.Contains(res.Stderr, "AADSTS90002") {
			t.Fatalf("stderr: %s", res.Stderr)
		}
	})
	t.Run("client mismatch", func(t *testing.T) {
		t.Parallel()
		e := harness.New(t)
		e.Consent()
		res := e.Run("get", "--scope", "graph", "--client-id", entrasim.ExchangeClientID)
		wantExit(t, res, 5, "get with another app's client id")
		if out := decodeError(t, res); out.Error.AADSTS != "AADSTS700007" || out.Error.Code != "configuration" {
			t.Fatalf("JSON error: %+v\nstderr: %s", out.Error, res.Stderr)
		}
		if !strings.Contains(res.Stderr, "AADSTS700007") {
			t.Fatalf("stderr: %s", res.Stderr)
		}
	})
}
