package core

import (
	"strings"
	"testing"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/harness"
)

// jsonToken is get's json output.
type jsonToken = harness.Token

func decode(t *testing.T, out string) jsonToken {
	t.Helper()
	return harness.DecodeToken(t, out)
}

func TestConsentGetCacheHitAndCustomerTenant(t *testing.T) {
	e := harness.New(t)
	e.Consent()
	e.Sim.ResetStats()

	first := decode(t, e.MustRun("get", "--scope", "graph").Stdout)
	if first.Cached || first.TenantID != entrasim.HomeTenantID || first.TokenType != "Bearer" {
		t.Fatalf("first get: %+v", first)
	}
	claims, err := e.Sim.ValidateAccessToken(first.AccessToken)
	if err != nil {
		t.Fatalf("the simulator rejects the token: %v", err)
	}
	if !strings.HasPrefix(claims.Audience, "https://graph.microsoft.com") {
		t.Fatalf("audience %q", claims.Audience)
	}
	before := e.Sim.Stats()
	second := decode(t, e.MustRun("get", "--scope", "graph").Stdout)
	if !second.Cached || second.AccessToken != first.AccessToken {
		t.Fatalf("second get was not a cache hit: %+v", second)
	}
	if after := e.Sim.Stats(); after.Requests["token"] != before.Requests["token"] || after.Requests["openid-configuration"] != before.Requests["openid-configuration"] {
		t.Fatalf("a cache hit made requests: before %+v after %+v", before.Requests, after.Requests)
	}

	cust := decode(t, e.MustRun("get", "--scope", "graph", "--tenant", entrasim.CustomerTenantID).Stdout)
	if cust.TenantID != entrasim.CustomerTenantID {
		t.Fatalf("customer token tenant %q", cust.TenantID)
	}
	if c, _ := e.Sim.ValidateAccessToken(cust.AccessToken); c.TenantID != entrasim.CustomerTenantID {
		t.Fatalf("customer token tid claim %q", c.TenantID)
	}
}
