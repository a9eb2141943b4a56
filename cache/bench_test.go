package cache

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// benchScopes are four resources an MSP script asks tokens for in each tenant.
var benchScopes = []string{
	"https://api.partnercenter.microsoft.com/user_impersonation",
	"https://graph.microsoft.com/.default",
	"https://management.azure.com/.default",
	"499b84ac-1321-427f-aa17-267ca6975798/.default",
}

func benchKey(tenant, scope int) Key {
	k := baseKey()
	k.Tenant = fmt.Sprintf("%08x-0000-4000-8000-000000000000", tenant)
	k.Scopes = []string{benchScopes[scope]}
	return k
}

// benchToken is about the size of a real Entra ID access token.
var benchToken = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + strings.Repeat("A", 2000) + ".sig"

// benchCache fills a cache with n entries, four scopes per tenant.
func benchCache(b *testing.B, n int) *Cache {
	c, err := Open(filepath.Join(b.TempDir(), "cache"))
	if err != nil {
		b.Fatal(err)
	}
	e := Entry{AccessToken: benchToken, ExpiresOn: time.Now().Add(time.Hour), TenantID: "t", Account: "a@b"}
	for i := range n {
		k := benchKey(i/len(benchScopes), i%len(benchScopes)).Canonical()
		data, err := encodeEntry(k, e)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.writeFile(k.id(), data); err != nil {
			b.Fatal(err)
		}
	}
	return c
}

// BenchmarkLoadHit shows that a hit costs the same in a cache of one entry as in
// one of 10,000 (2,500 tenants x 4 scopes): one file is read, the directory
// never listed.
func BenchmarkLoadHit(b *testing.B) {
	for _, n := range []int{1, 10_000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			c := benchCache(b, n)
			k := benchKey((n-1)/len(benchScopes), (n-1)%len(benchScopes))
			b.ReportAllocs()
			for b.Loop() {
				e, ok := c.Load(k)
				if !ok || !Fresh(e, time.Now(), DefaultMinValidity) {
					b.Fatal("miss")
				}
			}
		})
	}
}

func BenchmarkStore(b *testing.B) {
	c := benchCache(b, 0)
	k := benchKey(1, 1)
	e := Entry{AccessToken: benchToken, ExpiresOn: time.Now().Add(time.Hour)}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Store(k, e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKeyID(b *testing.B) {
	k := benchKey(7, 0)
	k.Scopes = append(k.Scopes, "openid", "profile")
	b.ReportAllocs()
	for b.Loop() {
		_ = k.ID()
	}
}
