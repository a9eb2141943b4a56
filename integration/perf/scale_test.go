package perf

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/cache"
	"github.com/pctoken/pctoken-helper/cloud"
	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/harness"
)

// scaleScopes are the four resources an MSP script asks tokens for in each tenant.
var scaleScopes = []string{"partner-center", "graph", "arm", "azure-devops"}

// scaleTenant is the i-th synthetic customer tenant id.
func scaleTenant(i int) string { return fmt.Sprintf("0f1e2d3c-0000-4000-9000-%012x", i) }

// helperKey is the cache key the helper computes for the default profile of e, a
// tenant and a scope alias (see cli's tokenRequest and token.Request.Key).
func helperKey(tb testing.TB, e *harness.Env, tenant, alias string) cache.Key {
	tb.Helper()
	host, err := cloud.NormalizeAuthorityHost(e.Sim.URL())
	if err != nil {
		tb.Fatal(err)
	}
	pub, _ := cloud.Lookup("public")
	return cache.Key{Profile: "default", ClientID: entrasim.PublicClientID, Authority: host, Tenant: tenant, Scopes: []string{pub.Scope(alias)}}
}

// fillCache stores n entries in dir, 4 scopes per synthetic tenant, valid for an hour.
func fillCache(tb testing.TB, e *harness.Env, dir string, n int) {
	tb.Helper()
	c, err := cache.Open(dir)
	if err != nil {
		tb.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	for i := range n {
		k := helperKey(tb, e, scaleTenant(i/len(scaleScopes)), scaleScopes[i%len(scaleScopes)])
		tok := fmt.Sprintf("synthetic.%d.token", i)
		if err := c.Store(k, cache.Entry{AccessToken: tok, ExpiresOn: exp, TenantID: k.Tenant, Scopes: k.Scopes}); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkScale is bar 4: the cache-hit time with 10,000 cached tokens (2,500
// tenants x 4 scopes) within 1.25x of the time with one. Two cache folders hold the
// same real entry (the helper's own, from a refresh), one alone and one among 9,999
// synthetic entries with the keys the helper computes; hits in each run interleaved.
// ratio-median = median(10,000) / median(1). One op is one hit in each.
func BenchmarkScale(b *testing.B) {
	e := consented(b)
	one, many := filepath.Join(e.Dir, "cache-one"), filepath.Join(e.Dir, "cache-many")
	args := func(dir string) []string { return append(append([]string(nil), hitArgs...), "--cache-dir", dir) }
	want := e.MustRun(args(one)...).Stdout
	fillCache(b, e, many, 9_999)
	// The helper's own entry, copied in: the same file name, since the key is the same.
	entries, _ := filepath.Glob(filepath.Join(one, "*.json"))
	if len(entries) != 1 {
		b.Fatalf("%d entries in the one-entry cache", len(entries))
	}
	data, err := os.ReadFile(entries[0])
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(many, filepath.Base(entries[0])), data, 0o600); err != nil {
		b.Fatal(err)
	}
	if n, _ := filepath.Glob(filepath.Join(many, "*.json")); len(n) != 10_000 {
		b.Fatalf("%d entries in the big cache, want 10,000", len(n))
	}
	// The synthetic keys are the helper's: it answers one of them from the cache.
	var got struct {
		AccessToken string `json:"access_token"`
		Cached      bool   `json:"cached"`
	}
	out := e.MustRun("get", "--scope", "arm", "--tenant", scaleTenant(1234), "--cache-dir", many).Stdout
	if err := json.Unmarshal([]byte(out), &got); err != nil || !got.Cached || got.AccessToken != fmt.Sprintf("synthetic.%d.token", 1234*4+2) {
		b.Fatalf("a synthetic entry was not a hit: %s", out)
	}
	env := e.Environ()
	var small, big series
	for b.Loop() {
		s := measure(b, e.Bin, args(one), env, nil)
		l := measure(b, e.Bin, args(many), env, nil)
		if string(s.stdout) != want || string(l.stdout) != want {
			b.Fatalf("not the cached token: %q, %q", s.stdout, l.stdout)
		}
		small.add(s)
		big.add(l)
	}
	ms1, ms10k := median(small.walls), median(big.walls)
	b.ReportMetric(ms(ms1), "one-entry-ms")
	b.ReportMetric(ms(ms10k), "10k-entries-ms")
	b.ReportMetric(float64(ms10k)/float64(ms1), "ratio-median")
}
