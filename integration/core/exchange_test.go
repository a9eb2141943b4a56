package core

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/harness"
)

// With strict rotation the simulator refuses a refresh token the second time, so
// every refresh below succeeds only if the helper saved the rotated token and used it.
func TestMinValidityRefreshUsesRotatedToken(t *testing.T) {
	t.Parallel()
	e := harness.New(t)
	e.Consent()
	e.Sim.ResetStats()
	e.Sim.SetStrictRotation(true)
	e.Sim.SetTokenLifetime(10 * time.Minute)

	consented := storedRefreshToken(t, e, "default")
	first := decode(t, e.MustRun("get", "--scope", "graph").Stdout)
	if first.Cached {
		t.Fatalf("first get came from the cache: %+v", first)
	}
	rotated := storedRefreshToken(t, e, "default")
	if rotated == consented {
		t.Fatal("the rotated refresh token was not saved")
	}
	if e.Sim.RefreshTokenValid(consented) || !e.Sim.RefreshTokenValid(rotated) {
		t.Fatal("the simulator should accept only the rotated refresh token")
	}

	// The token has ~10 minutes left: a hit for the default 5m, a refresh for 15m.
	if hit := decode(t, e.MustRun("get", "--scope", "graph").Stdout); !hit.Cached || hit.AccessToken != first.AccessToken {
		t.Fatalf("a token valid for 10m was not served from the cache with --min-validity 5m: %+v", hit)
	}
	before := e.Sim.Stats()
	second := decode(t, e.MustRun("get", "--scope", "graph", "--min-validity", "15m").Stdout)
	if second.Cached || second.AccessToken == first.AccessToken {
		t.Fatalf("a token expiring within --min-validity was not refreshed: %+v", second)
	}
	if d := e.Sim.Stats().RefreshTokensRedeemed - before.RefreshTokensRedeemed; d != 1 {
		t.Fatalf("%d refresh-token redemptions for one refresh", d)
	}
	again := storedRefreshToken(t, e, "default")
	if again == rotated || !e.Sim.RefreshTokenValid(again) {
		t.Fatal("the second rotation was not saved")
	}
	// A third process refreshes once more with the token the second one saved.
	third := decode(t, e.MustRun("get", "--scope", "graph", "--min-validity", "15m").Stdout)
	if third.Cached || third.AccessToken == second.AccessToken {
		t.Fatalf("third refresh: %+v", third)
	}
	if errs := e.Sim.Stats().Errors; len(errs) != 0 {
		t.Fatalf("the simulator refused requests: %v", errs)
	}
}

func TestForceRefresh(t *testing.T) {
	t.Parallel()
	e := harness.New(t)
	e.Consent()
	first := decode(t, e.MustRun("get", "--scope", "arm").Stdout)
	before := e.Sim.Stats()
	forced := decode(t, e.MustRun("get", "--scope", "arm", "--force-refresh").Stdout)
	if forced.Cached || forced.AccessToken == first.AccessToken {
		t.Fatalf("--force-refresh returned the cached token: %+v", forced)
	}
	if d := e.Sim.Stats().Grants["refresh_token"] - before.Grants["refresh_token"]; d != 1 {
		t.Fatalf("--force-refresh made %d refresh-token requests, want 1", d)
	}
	// The forced token replaced the cached one.
	hit := decode(t, e.MustRun("get", "--scope", "arm").Stdout)
	if !hit.Cached || hit.AccessToken != forced.AccessToken {
		t.Fatalf("after --force-refresh the cache holds %+v", hit)
	}
}

// An identity provider that accepts the connection and never answers must end in
// exit 4 within --timeout, never a hang.
func TestTimeoutOnHangingIdentityProvider(t *testing.T) {
	t.Parallel()
	e := harness.New(t)
	e.Consent()
	e.Sim.HangNext(100)
	start := time.Now()
	res := e.Run("get", "--scope", "graph", "--timeout", "2s")
	took := time.Since(start)
	wantExit(t, res, 4, "get against a hanging token endpoint")
	if took > 10*time.Second {
		t.Fatalf("get --timeout 2s took %s", took)
	}
	out := decodeError(t, res)
	if out.Error.Code != "transient" || !strings.Contains(res.Stderr, "error:") {
		t.Fatalf("timeout error: %+v\nstderr: %s", out, res.Stderr)
	}
	t.Logf("get --timeout 2s against a hanging endpoint: exit 4 after %s", took.Round(time.Millisecond))
}

func TestOutputShapes(t *testing.T) {
	t.Parallel()
	e := harness.New(t)
	e.Consent()
	ref := decode(t, e.MustRun("get", "--scope", "graph").Stdout)
	exp := time.Unix(ref.ExpiresOn, 0)
	if at, err := time.Parse(time.RFC3339, ref.ExpiresAt); err != nil || !at.Equal(exp) || !strings.HasSuffix(ref.ExpiresAt, "Z") {
		t.Fatalf("expires_at %q does not match expires_on %d in UTC", ref.ExpiresAt, ref.ExpiresOn)
	}
	if ref.Profile != "default" || ref.TokenType != "Bearer" || ref.TenantID != entrasim.HomeTenantID || len(ref.Scopes) == 0 {
		t.Fatalf("json: %+v", ref)
	}
	for _, s := range ref.Scopes {
		if !strings.HasPrefix(s, "https://graph.microsoft.com/") {
			t.Fatalf("json scopes %q are not Graph's", ref.Scopes)
		}
	}
	var raw map[string]any
	json.Unmarshal([]byte(e.MustRun("get", "--scope", "graph").Stdout), &raw)
	for _, k := range []string{"access_token", "token_type", "expires_on", "expires_at", "tenant_id", "scopes", "profile", "cached"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("json output lacks %q: %v", k, raw)
		}
	}

	if out := e.MustRun("get", "--scope", "graph", "-o", "token").Stdout; out != ref.AccessToken+"\n" {
		t.Fatalf("-o token printed %q", out)
	}

	// The test runs the helper with the machine's time zone (TZ unset): az prints local time.
	var az struct {
		AccessToken string `json:"accessToken"`
		ExpiresOn   string `json:"expiresOn"`
		ExpiresOnTS int64  `json:"expires_on"`
		Tenant      string `json:"tenant"`
		TokenType   string `json:"tokenType"`
	}
	azOut := e.MustRun("get", "--scope", "graph", "--output", "az").Stdout
	if err := json.Unmarshal([]byte(azOut), &az); err != nil {
		t.Fatalf("-o az: %v: %s", err, azOut)
	}
	if az.AccessToken != ref.AccessToken || az.ExpiresOnTS != ref.ExpiresOn || az.Tenant != entrasim.HomeTenantID || az.TokenType != "Bearer" {
		t.Fatalf("-o az: %s", azOut)
	}
	if local, err := time.ParseInLocation("2006-01-02 15:04:05.000000", az.ExpiresOn, time.Local); err != nil || !local.Equal(exp) {
		t.Fatalf("-o az expiresOn %q is not %s in local time (%v)", az.ExpiresOn, exp, err)
	}

	var azd struct {
		Token     string `json:"token"`
		ExpiresOn string `json:"expiresOn"`
	}
	azdOut := e.MustRun("get", "--scope", "graph", "--output", "azd").Stdout
	if err := json.Unmarshal([]byte(azdOut), &azd); err != nil {
		t.Fatalf("-o azd: %v: %s", err, azdOut)
	}
	if at, err := time.Parse("2006-01-02T15:04:05Z", azd.ExpiresOn); azd.Token != ref.AccessToken || err != nil || !at.Equal(exp) {
		t.Fatalf("-o azd: %s", azdOut)
	}

	// A failure in token/az/azd output leaves stdout empty: the caller would take
	// anything there for a token.
	for _, o := range []string{"token", "az", "azd"} {
		res := e.Run("get", "--scope", "graph", "--tenant", entrasim.OtherTenantID, "-o", o)
		if res.Code == 0 || res.Stdout != "" || !strings.Contains(res.Stderr, "error:") {
			t.Fatalf("-o %s failure: exit %d stdout %q stderr %q", o, res.Code, res.Stdout, res.Stderr)
		}
	}
}
