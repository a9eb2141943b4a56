package core

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/harness"
)

// TestMistakesAreCaughtBeforeTheNetwork: a misspelt scope alias, store or profile is a
// usage error naming what was meant, and nothing reaches the identity provider.
func TestMistakesAreCaughtBeforeTheNetwork(t *testing.T) {
	e := harness.New(t)
	e.Consent("--profile", "contoso")
	e.Sim.ResetStats()
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"scope typo", []string{"get", "--profile", "contoso", "--scope", "grpah"}, []string{"grpah", "did you mean graph"}},
		{"scope typo in a list", []string{"get", "--profile", "contoso", "--scope", "graph,azure-devop"}, []string{"did you mean azure-devops"}},
		{"store typo", []string{"get", "--profile", "contoso", "--store", "flie"}, []string{"did you mean file"}},
		{"profile typo", []string{"get", "--profile", "contosso"}, []string{"did you mean contoso", "saved profiles: contoso"}},
		{"consent scope typo", []string{"consent", "--profile", "fabrikam", "--flow", "device-code", "--scopes", "partner-centre"}, []string{"did you mean partner-center"}},
		{"consent store typo", []string{"consent", "--profile", "fabrikam", "--flow", "device-code", "--store", "nosuch"}, []string{"unknown store"}},
		{"status of an unknown profile", []string{"status", "--profile", "contosso"}, []string{"did you mean contoso"}},
	} {
		res := e.Run(c.args...)
		wantExit(t, res, 2, c.name)
		for _, w := range c.want {
			if !strings.Contains(res.Stderr, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", c.name, w, res.Stderr)
			}
		}
		if strings.Contains(res.Stderr, "code:") || strings.Contains(res.Stderr, "https://") && strings.Contains(res.Stderr, "devicelogin") {
			t.Errorf("%s: the sign-in started before the mistake was found:\n%s", c.name, res.Stderr)
		}
	}
	if n := e.Sim.Stats().Requests["token"] + e.Sim.Stats().Requests["devicecode"]; n != 0 {
		t.Fatalf("%d requests reached the identity provider", n)
	}
	// Permissions (with a dot) and full scopes are not typos.
	for _, s := range []string{"User.Read", "https://graph.microsoft.com/.default"} {
		if res := e.Run("get", "--profile", "contoso", "--scope", s); res.Code == 2 {
			t.Errorf("--scope %s refused as a usage error:\n%s", s, res.Stderr)
		}
	}
}

// TestNoProfileAtAllNeedsConsent: on a fresh machine the hint is a consent command
// that works as written.
func TestNoProfileAtAllNeedsConsent(t *testing.T) {
	e := harness.New(t)
	delete(e.Vars, "PCTOKEN_CLIENT_ID")
	res := e.Run("get", "--profile", "contoso")
	wantExit(t, res, 3, "get on a fresh machine")
	if !strings.Contains(res.Stderr, "hint: pctoken-helper consent --profile contoso --client-id") {
		t.Fatalf("the hint must name --client-id:\n%s", res.Stderr)
	}
}

// TestStatusShowsARefusedTokenAsNeedingConsent: after renew found the refresh token
// expired, status says consent is needed (text and JSON, 0 days left), --warn-days
// exits 3, and a successful consent clears it.
func TestStatusShowsARefusedTokenAsNeedingConsent(t *testing.T) {
	e := harness.New(t)
	e.Consent("--profile", "tailspin")
	e.Consent("--profile", "contoso")
	if res := e.Run("status", "--warn-days", "30"); res.Code != 0 {
		t.Fatalf("fresh profiles: status --warn-days 30 exit %d\n%s", res.Code, res.Stderr)
	}
	e.Sim.ExpireRefreshTokens()
	res := e.Run("renew", "--profile", "tailspin")
	wantExit(t, res, 3, "renew of an expired refresh token")

	res = e.MustRun("status", "--profile", "tailspin")
	if !strings.Contains(res.Stdout, "NEEDS CONSENT") || !strings.Contains(res.Stdout, "AADSTS700082") || strings.Contains(res.Stdout, "profile        contoso") {
		t.Fatalf("status --profile tailspin:\n%s", res.Stdout)
	}
	var js struct {
		Profiles []struct {
			Name         string `json:"name"`
			DaysLeft     *int   `json:"days_left"`
			NeedsConsent bool   `json:"needs_consent"`
			Refused      *struct {
				AADSTS string `json:"aadsts"`
			} `json:"refused"`
		} `json:"profiles"`
	}
	res = e.Run("status", "-o", "json", "--warn-days", "30")
	wantExit(t, res, 3, "status --warn-days with a refused token")
	if err := json.Unmarshal([]byte(res.Stdout), &js); err != nil || len(js.Profiles) != 2 {
		t.Fatalf("status -o json: %v\n%s", err, res.Stdout)
	}
	for _, p := range js.Profiles {
		refused := p.Name == "tailspin"
		if p.NeedsConsent != refused || (p.Refused != nil) != refused || refused && (p.DaysLeft == nil || *p.DaysLeft != 0 || p.Refused.AADSTS != "700082") {
			t.Errorf("profile %s in status -o json: %+v", p.Name, p)
		}
	}
	if !strings.Contains(res.Stderr, "tailspin") || strings.Contains(res.Stderr, "contoso") {
		t.Fatalf("--warn-days must name tailspin only:\n%s", res.Stderr)
	}
	e.Consent("--profile", "tailspin")
	if res := e.MustRun("status", "--profile", "tailspin"); strings.Contains(res.Stdout, "NEEDS CONSENT") {
		t.Fatalf("consent again must clear the refusal:\n%s", res.Stdout)
	}
}

// TestMissingConsentNamesTheConsentThatFixesIt: AADSTS65001 in the home tenant hints
// at consent with the refused scope; in a customer tenant, at that tenant's admin
// consent.
func TestMissingConsentNamesTheConsentThatFixesIt(t *testing.T) {
	e := harness.New(t)
	e.Consent()
	e.Sim.RequireConsent(true)
	res := e.Run("get", "--scope", "graph")
	wantExit(t, res, 3, "65001 at home")
	if !strings.Contains(res.Stderr, "hint: pctoken-helper consent --profile default --scopes https://graph.microsoft.com/.default") {
		t.Fatalf("65001 at home: the hint must name the scope:\n%s", res.Stderr)
	}
	e.Sim.RequireConsent(false)
	e.Sim.SetTenantFailure(entrasim.CustomerTenantID, 65001)
	res = e.Run("get", "--scope", "graph", "--tenant", entrasim.CustomerTenantID)
	wantExit(t, res, 3, "65001 in a customer tenant")
	if !strings.Contains(res.Stderr, "/"+entrasim.CustomerTenantID+"/adminconsent?client_id="+entrasim.PublicClientID) {
		t.Fatalf("65001 in a customer tenant: the hint must be that tenant's admin consent:\n%s", res.Stderr)
	}
}
