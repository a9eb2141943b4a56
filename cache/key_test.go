package cache

import (
	"slices"
	"testing"
)

func baseKey() Key {
	return Key{
		Profile:   "contoso",
		ClientID:  "0a1b2c3d-0000-4000-8000-000000000001",
		Authority: "https://login.microsoftonline.com",
		Tenant:    "fabrikam.onmicrosoft.com",
		Scopes:    []string{"https://api.partnercenter.microsoft.com/user_impersonation"},
	}
}

func TestKeyIDSameForEquivalentKeys(t *testing.T) {
	a := Key{
		Profile:   "p",
		ClientID:  "ABCDEF00-0000-4000-8000-000000000001",
		Authority: "HTTPS://Login.MicrosoftOnline.com/",
		Tenant:    " Fabrikam.OnMicrosoft.com",
		Scopes:    []string{"https://graph.microsoft.com/User.Read", "openid", "", "openid", "https://GRAPH.microsoft.com/user.read"},
	}
	b := Key{
		Profile:   "p",
		ClientID:  "abcdef00-0000-4000-8000-000000000001",
		Authority: "https://login.microsoftonline.com",
		Tenant:    "fabrikam.onmicrosoft.com",
		Scopes:    []string{"openid https://graph.microsoft.com/user.read"},
	}
	if a.ID() != b.ID() {
		t.Fatalf("equivalent keys differ:\n%+v -> %s\n%+v -> %s", a, a.ID(), b, b.ID())
	}
	want := []string{"https://graph.microsoft.com/user.read", "openid"}
	if got := a.Canonical().Scopes; !slices.Equal(got, want) {
		t.Fatalf("canonical scopes = %q, want %q", got, want)
	}
	if a.Scopes[0] != "https://graph.microsoft.com/User.Read" || len(a.Scopes) != 5 {
		t.Fatalf("ID changed the caller's scopes: %q", a.Scopes)
	}
}

func TestKeyIDDiffersAcrossFieldBoundaries(t *testing.T) {
	k := func(f func(*Key)) Key {
		k := baseKey()
		f(&k)
		return k
	}
	keys := map[string]Key{
		"base":              baseKey(),
		"profile ab,c":      k(func(k *Key) { k.Profile, k.ClientID = "ab", "c" }),
		"profile a,bc":      k(func(k *Key) { k.Profile, k.ClientID = "a", "bc" }),
		"tenant ab,c":       k(func(k *Key) { k.Tenant, k.Scopes = "ab", []string{"c"} }),
		"tenant a,bc":       k(func(k *Key) { k.Tenant, k.Scopes = "a", []string{"bc"} }),
		"scopes ab,c":       k(func(k *Key) { k.Scopes = []string{"ab", "c"} }),
		"scopes a,bc":       k(func(k *Key) { k.Scopes = []string{"a", "bc"} }),
		"scopes abc":        k(func(k *Key) { k.Scopes = []string{"abc"} }),
		"scopes none":       k(func(k *Key) { k.Scopes = nil }),
		"profile case":      k(func(k *Key) { k.Profile = "Contoso" }),
		"other authority":   k(func(k *Key) { k.Authority = "https://login.microsoftonline.us" }),
		"authority port":    k(func(k *Key) { k.Authority = "https://127.0.0.1:8443" }),
		"other client":      k(func(k *Key) { k.ClientID = "0a1b2c3d-0000-4000-8000-000000000002" }),
		"other tenant":      k(func(k *Key) { k.Tenant = "contoso.onmicrosoft.com" }),
		"extra scope":       k(func(k *Key) { k.Scopes = append(k.Scopes, "offline_access") }),
		"empty key":         {},
		"profile is tenant": k(func(k *Key) { k.Profile, k.Tenant = k.Tenant, k.Profile }),
	}
	seen := map[string]string{}
	for name, key := range keys {
		id := key.ID()
		if len(id) != 64 {
			t.Errorf("%s: ID %q is not 64 hex digits", name, id)
		}
		if other, dup := seen[id]; dup {
			t.Errorf("%s and %s share ID %s", name, other, id)
		}
		seen[id] = name
	}
}

// TestKeyIDIsStable pins the encoding: changing it silently orphans every cache
// file users have, so a change must be deliberate (and bump keyDomain). The
// value was also computed outside Go from the documented encoding.
func TestKeyIDIsStable(t *testing.T) {
	const want = "c24f10ed445733c2c61a4c5e604736a77828eecd8ef8118cd209cfd653c4db67"
	if got := baseKey().ID(); got != want {
		t.Fatalf("ID = %s, want %s", got, want)
	}
}
