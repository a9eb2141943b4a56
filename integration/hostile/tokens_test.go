package hostile

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
)

// An absurd or already expired lifetime is a transient failure, never cached and
// never handed out; the next honest answer works.
func TestAbsurdLifetimesAreRefused(t *testing.T) {
	t.Parallel()
	e, p := env(t)
	for _, c := range []struct {
		name      string
		expiresIn any
		want      string
	}{
		{"10^12 seconds", 1_000_000_000_000, "lifetime"},
		{"30 days", 30 * 24 * 3600, "lifetime"},
		{"zero", 0, "already expired"},
		{"an hour ago", -3600, "already expired"},
		{"an hour ago as a string", "-3600", "already expired"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p.set(tokenAnswer(func(p *idp, answer map[string]any) { answer["expires_in"] = c.expiresIn }))
			before := cached(t, e)
			res := run(t, e, 60*time.Second, "get", "--scope", "graph", "--force-refresh")
			p.refused(t, res, 4, c.want, "not cached")
			sameCache(t, before, cached(t, e))
			// Nor is it in the cache for a get that does not force a refresh.
			p.set(nil)
			res = run(t, e, 60*time.Second, "get", "--scope", "arm")
			if res.Code != 0 {
				t.Fatalf("honest answer after the refusal: exit %d\n%s", res.Code, res.Stderr)
			}
		})
	}
}

// The expiry reported and cached is the token's own exp when that is earlier than
// what expires_in says.
func TestExpiryIsTheTokensOwnExpWhenEarlier(t *testing.T) {
	t.Parallel()
	e, p := env(t)
	exp := time.Now().Add(10 * time.Minute).Unix()
	p.set(tokenAnswer(func(p *idp, answer map[string]any) {
		answer["expires_in"] = 3600
		editClaims(answer, func(c map[string]any) { c["exp"] = exp })
	}))
	res := run(t, e, 60*time.Second, "get", "--scope", "graph", "-o", "json")
	if res.Code != 0 {
		t.Fatalf("exit %d\n%s", res.Code, res.Stderr)
	}
	var tok struct {
		ExpiresOn int64 `json:"expires_on"`
		Cached    bool  `json:"cached"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &tok); err != nil {
		t.Fatal(err)
	}
	if tok.ExpiresOn > exp {
		t.Fatalf("expires_on %d is later than the token's exp %d", tok.ExpiresOn, exp)
	}
	// The cache keeps the same expiry: with --min-validity 15m the entry is too old.
	p.set(nil)
	before := p.hits(r0(p))
	res = run(t, e, 60*time.Second, "get", "--scope", "graph", "--min-validity", "15m", "-o", "json")
	if res.Code != 0 || p.hits(r0(p)) != before+1 {
		t.Fatalf("a token expiring within 15m was served from the cache: exit %d, %d new token requests\n%s", res.Code, p.hits(r0(p))-before, res.Stdout)
	}
	p.noLeak(t, res)
}

// A home-tenant token answering a customer-tenant request is refused and never
// cached under the customer's key; so is a token whose tid is another tenant.
func TestTokenForAnotherTenantIsRefused(t *testing.T) {
	t.Parallel()
	e, p := env(t)
	t.Run("home token for a customer request", func(t *testing.T) {
		p.set(func(p *idp, w http.ResponseWriter, r *http.Request, body []byte) bool {
			if isToken(r) && strings.HasPrefix(r.URL.Path, "/"+entrasim.CustomerTenantID+"/") {
				r.URL.Path = "/" + entrasim.HomeTenantID + strings.TrimPrefix(r.URL.Path, "/"+entrasim.CustomerTenantID)
				r.URL.RawPath = ""
			}
			return false
		})
		before := cached(t, e)
		res := run(t, e, 60*time.Second, "get", "--scope", "graph", "--tenant", entrasim.CustomerTenantID)
		p.refused(t, res, 5, "tenant "+entrasim.HomeTenantID, entrasim.CustomerTenantID, "not cached")
		sameCache(t, before, cached(t, e))
	})
	t.Run("customer token for a home request", func(t *testing.T) {
		p.set(tokenAnswer(func(p *idp, answer map[string]any) {
			editClaims(answer, func(c map[string]any) { c["tid"] = entrasim.CustomerTenantID })
		}))
		before := cached(t, e)
		res := run(t, e, 60*time.Second, "get", "--scope", "graph", "--force-refresh")
		p.refused(t, res, 5, "tenant "+entrasim.CustomerTenantID, "not cached")
		sameCache(t, before, cached(t, e))
	})
}

// A token for another resource than the one asked for is refused; an opaque token
// (not a JWT) is still accepted, as Entra issues them for some resources.
func TestTokenForAnotherAudienceIsRefused(t *testing.T) {
	t.Parallel()
	e, p := env(t)
	p.set(tokenAnswer(func(p *idp, answer map[string]any) {
		editClaims(answer, func(c map[string]any) { c["aud"] = "https://management.azure.com" })
	}))
	before := cached(t, e)
	res := run(t, e, 60*time.Second, "get", "--scope", "graph")
	p.refused(t, res, 5, "https://management.azure.com", "https://graph.microsoft.com", "not cached")
	sameCache(t, before, cached(t, e))

	p.set(tokenAnswer(func(p *idp, answer map[string]any) {
		answer["access_token"] = "EwBwA8l6BAAU-opaque-token-of-a-first-party-resource"
	}))
	res = run(t, e, 60*time.Second, "get", "--scope", "graph", "-o", "token")
	if res.Code != 0 || strings.TrimSpace(res.Stdout) != "EwBwA8l6BAAU-opaque-token-of-a-first-party-resource" {
		t.Fatalf("opaque token: exit %d\nstdout: %s\nstderr: %s", res.Code, res.Stdout, res.Stderr)
	}
}
