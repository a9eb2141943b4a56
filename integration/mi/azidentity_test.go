package mi

import (
	"strings"
	"testing"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
)

const (
	armScope   = "https://management.azure.com/.default"
	graphScope = "https://graph.microsoft.com/.default"
)

// goClient runs this test binary as an azidentity program under mi exec, asking for
// ARM and Graph tokens and calling api with them.
func (e *env) goClient(t *testing.T, cred, clientID string, a *api, miArgs ...string) ([]childLine, string, int) {
	t.Helper()
	args := append(append([]string{"mi", "exec"}, miArgs...), "--", self(t))
	res := e.run(t, map[string]string{
		childVar:             "azidentity",
		"MI_CHILD_CRED":      cred,
		"MI_CHILD_CLIENT_ID": clientID,
		"MI_CHILD_SCOPES":    armScope + "," + graphScope,
		"MI_CHILD_APIS":      a.base + "/arm," + a.base + "/graph",
		"MI_CHILD_API_CA":    a.caFile,
	}, args...)
	return childLines(t, res.Stdout), res.Stderr, res.Code
}

// checkTokens: every line has a token for its scope's audience in tenant, the SDK got
// the same token twice, and the API accepted it.
func checkTokens(t *testing.T, e *env, lines []childLine, stderr string, code int, tenant string) {
	t.Helper()
	if code != 0 || len(lines) != 2 {
		t.Fatalf("child: exit %d, %d lines %+v\nstderr: %s", code, len(lines), lines, stderr)
	}
	for _, l := range lines {
		if l.Error != "" {
			t.Fatalf("%s %s: %s", l.Cred, l.Scope, l.Error)
		}
		c, err := e.Sim.ValidateAccessToken(l.Token)
		if err != nil {
			t.Fatalf("%s: %v", l.Scope, err)
		}
		if want := strings.TrimSuffix(l.Scope, "/.default"); c.Audience != want || c.TenantID != tenant || c.UPN != entrasim.UserUPN {
			t.Errorf("%s: token for %s in %s as %q, want %s in %s as the user", l.Scope, c.Audience, c.TenantID, c.UPN, want, tenant)
		}
		// azidentity keeps expires_on as it is. MSAL Node turns it into expires_in and
		// back, against clocks read at different seconds, so its expiry may come out
		// earlier, never later.
		if exp := c.ExpiresAt.Unix(); l.ExpiresOn != exp && (l.Cred == "mi-go" || l.Cred == "dac-go" || l.ExpiresOn > exp || l.ExpiresOn < exp-120) {
			t.Errorf("%s %s: SDK's ExpiresOn %d, token's exp %d", l.Cred, l.Scope, l.ExpiresOn, exp)
		}
		if !l.Same {
			t.Errorf("%s: the second GetToken got another token", l.Scope)
		}
		if l.APIStatus != 200 {
			t.Errorf("%s: the API answered %d", l.Scope, l.APIStatus)
		}
	}
}

// TestAzidentityHomeTenant: ManagedIdentityCredential and DefaultAzureCredential get
// ARM and Graph tokens of the partner's tenant, and an azcore pipeline calls an API
// with them; the second program is answered from the helper's cache.
func TestAzidentityHomeTenant(t *testing.T) {
	e := newEnv(t)
	a := newAPI(t, e.Sim, entrasim.HomeTenantID)
	before := grants(e.Sim)
	lines, stderr, code := e.goClient(t, "mi", "", a)
	checkTokens(t, e, lines, stderr, code, entrasim.HomeTenantID)
	if n := grants(e.Sim) - before; n != 2 {
		t.Errorf("%d refresh-token redemptions for two resources, want 2", n)
	}
	before = grants(e.Sim)
	lines, stderr, code = e.goClient(t, "dac", "", a)
	checkTokens(t, e, lines, stderr, code, entrasim.HomeTenantID)
	if n := grants(e.Sim) - before; n != 0 {
		t.Errorf("second program: %d redemptions, want 0 (the cache answers)", n)
	}
	// The profile's own client id is a selector that names the profile's identity.
	lines, stderr, code = e.goClient(t, "mi", entrasim.PublicClientID, a)
	checkTokens(t, e, lines, stderr, code, entrasim.HomeTenantID)
}

// TestAzidentityCustomerTenant: --tenant, or a selector naming an alias, gets tokens of
// a customer tenant (GDAP).
func TestAzidentityCustomerTenant(t *testing.T) {
	e := newEnv(t)
	a := newAPI(t, e.Sim, entrasim.CustomerTenantID)
	lines, stderr, code := e.goClient(t, "mi", "", a, "--tenant", entrasim.CustomerTenantID)
	checkTokens(t, e, lines, stderr, code, entrasim.CustomerTenantID)
	for _, cred := range []string{"mi", "dac"} {
		before := grants(e.Sim)
		lines, stderr, code = e.goClient(t, cred, "fabrikam", a, "--tenant-alias", "fabrikam="+entrasim.CustomerTenantID)
		checkTokens(t, e, lines, stderr, code, entrasim.CustomerTenantID)
		if n := grants(e.Sim) - before; n != 0 {
			t.Errorf("%s through the alias: %d redemptions, want 0 (same cache as --tenant)", cred, n)
		}
	}
}

// TestAzidentityShowsTheHelpersMessage: when the refresh token is revoked, the SDK's
// error carries the helper's message and the command that fixes it; an unknown
// selector is refused, never answered from another tenant.
func TestAzidentityShowsTheHelpersMessage(t *testing.T) {
	e := newEnv(t)
	a := newAPI(t, e.Sim, entrasim.HomeTenantID)
	e.Sim.RevokeRefreshTokens()
	lines, stderr, code := e.goClient(t, "mi", "", a)
	if code == 0 || len(lines) != 2 {
		t.Fatalf("exit %d, lines %+v\nstderr: %s", code, lines, stderr)
	}
	for _, l := range lines {
		if l.Token != "" || !strings.Contains(l.Error, "pctoken-helper consent --profile contoso") || !strings.Contains(l.Error, "AADSTS50173") {
			t.Errorf("%s: SDK error %q, want the helper's message and remedy", l.Scope, l.Error)
		}
	}

	e = newEnv(t)
	lines, _, code = e.goClient(t, "mi", "00000000-0000-0000-0000-000000000000", a)
	if code == 0 || len(lines) != 2 || lines[0].Token != "" || !strings.Contains(lines[0].Error, "unknown identity client_id") {
		t.Errorf("unknown client id: exit %d, %+v", code, lines)
	}
	if n := grants(e.Sim); n != 0 {
		t.Errorf("an unknown selector caused %d redemptions", n)
	}
}
