package keyvault

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/pctoken/pctoken-helper/cache"
)

type countingCred struct {
	calls int
	err   error
}

func (c *countingCred) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.calls++
	if c.err != nil {
		return azcore.AccessToken{}, c.err
	}
	return azcore.AccessToken{Token: "vault-token-" + strings.Repeat("x", c.calls), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// The vault's token is kept across processes (a CachedCredential per process), the
// disk serves a process's first ask only, and Forget drops a token the vault refused.
func TestCachedCredential(t *testing.T) {
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	opts := policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}, TenantID: "t"}
	inner := &countingCred{}
	process := func() *CachedCredential {
		return &CachedCredential{Cred: inner, Cache: c, Profile: "p", Method: "environment", Who: "app", Vault: "https://v.vault.azure.net"}
	}
	first, err := process().GetToken(context.Background(), opts)
	if err != nil || inner.calls != 1 {
		t.Fatalf("first process: %v, %d calls", err, inner.calls)
	}
	p2 := process()
	again, _ := p2.GetToken(context.Background(), opts)
	if again.Token != first.Token || inner.calls != 1 {
		t.Fatalf("a new process asked the credential again (%d calls)", inner.calls)
	}
	// The same process asking again means azcore needs a new token: past the disk.
	if _, _ = p2.GetToken(context.Background(), opts); inner.calls != 2 {
		t.Fatalf("second ask of a process: %d calls", inner.calls)
	}
	p3 := process()
	p3.GetToken(context.Background(), opts)
	if !p3.Forget() || p3.Forget() {
		t.Fatal("Forget of the token the disk served")
	}
	if _, ok := c.Load(cache.Key{Profile: "p", ClientID: "keyvault:environment:app", Authority: "https://v.vault.azure.net", Tenant: "t", Scopes: opts.Scopes}); ok {
		t.Fatal("the refused token is still cached")
	}
	// A CAE claims challenge never comes from the cache; failures are marked.
	inner.err = errors.New("no identity")
	_, err = process().GetToken(context.Background(), policy.TokenRequestOptions{Scopes: opts.Scopes, TenantID: "t", Claims: "{}"})
	var ce *credentialError
	if !errors.As(err, &ce) {
		t.Fatalf("credential failure not marked: %v", err)
	}
}

func TestValidAuth(t *testing.T) {
	for _, m := range append([]string{""}, AuthMethods...) {
		if ValidAuth(m) != nil {
			t.Errorf("%q refused", m)
		}
	}
	if err := ValidAuth("client-secret"); err == nil || !strings.Contains(err.Error(), "managed-identity") {
		t.Errorf("unknown method: %v", err)
	}
}
