package core

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/harness"
)

type jsonToken struct {
	AccessToken string   `json:"access_token"`
	TokenType   string   `json:"token_type"`
	ExpiresOn   int64    `json:"expires_on"`
	ExpiresAt   string   `json:"expires_at"`
	TenantID    string   `json:"tenant_id"`
	Scopes      []string `json:"scopes"`
	Profile     string   `json:"profile"`
	Cached      bool     `json:"cached"`
}

func decode(t *testing.T, out string) jsonToken {
	t.Helper()
	var tok jsonToken
	if err := json.Unmarshal([]byte(out), &tok); err != nil {
		t.Fatalf("get output is not JSON: %v\n%s", err, out)
	}
	return tok
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
