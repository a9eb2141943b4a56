package settings

import (
	"errors"
	"slices"
	"testing"

	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/profile"
)

const (
	app     = "0f1e2d3c-0000-4000-8000-00000000a001"
	other   = "0f1e2d3c-0000-4000-8000-00000000b002"
	home    = "0f1e2d3c-0000-4000-8000-00000000c0de"
	partner = "https://api.partnercenter.microsoft.com/user_impersonation"
	graph   = "https://graph.microsoft.com/.default"
)

// saved is a loader with one saved profile, "contoso", in US Government.
func saved(name string) (profile.Profile, error) {
	if name != "contoso" {
		return profile.Profile{}, profile.ErrNotFound
	}
	return profile.Profile{ClientID: app, Cloud: "usgov", HomeTenant: home, Scopes: []string{"graph"}}, nil
}

func TestResolveProfilePrecedence(t *testing.T) {
	tests := map[string]struct {
		given         Given
		explicit      string
		name, client  string
		authority     string
		saved         bool
		kind          failure.Kind
		failsWithKind bool
	}{
		"saved":                      {given: Given{Profile: "contoso"}, name: "contoso", client: app, authority: "https://login.microsoftonline.us", saved: true},
		"flag over saved":            {given: Given{Profile: "contoso", ClientID: other}, name: "contoso", client: other, authority: "https://login.microsoftonline.us", saved: true},
		"explicit over given":        {given: Given{Profile: "nobody"}, explicit: "contoso", name: "contoso", client: app, authority: "https://login.microsoftonline.us", saved: true},
		"default, not saved":         {name: "default", authority: "https://login.microsoftonline.com"},
		"authority host over cloud":  {given: Given{Profile: "contoso", AuthorityHost: "HTTPS://127.0.0.1:8443/"}, name: "contoso", client: app, authority: "https://127.0.0.1:8443", saved: true},
		"plain http authority":       {given: Given{AuthorityHost: "http://127.0.0.1:8443"}, failsWithKind: true, kind: failure.Usage},
		"unknown cloud":              {given: Given{Cloud: "mars"}, failsWithKind: true, kind: failure.Usage},
		"profile name with a slash":  {given: Given{Profile: "a/b"}, failsWithKind: true, kind: failure.Usage},
		"profile name of 65 letters": {given: Given{Profile: string(make([]byte, 65))}, failsWithKind: true, kind: failure.Usage},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := ResolveProfile(tt.given, tt.explicit, saved)
			if tt.failsWithKind {
				if failure.KindOf(err) != tt.kind {
					t.Fatalf("err %v (kind %v), want kind %v", err, failure.KindOf(err), tt.kind)
				}
				return
			}
			if err != nil || p.Name != tt.name || p.ClientID != tt.client || p.Authority != tt.authority || p.Saved != tt.saved {
				t.Fatalf("got %+v, %v", p, err)
			}
		})
	}
}

func TestResolveProfileDamaged(t *testing.T) {
	broken := errors.New("profile contoso: unexpected end of JSON input")
	_, err := ResolveProfile(Given{}, "contoso", func(string) (profile.Profile, error) { return profile.Profile{}, broken })
	if failure.KindOf(err) != failure.Configuration || !errors.Is(err, broken) || failure.ProfileOf(err) != "contoso" {
		t.Fatalf("err %v: want a configuration error wrapping the cause and naming the profile", err)
	}
}

func TestResolveToken(t *testing.T) {
	p, err := ResolveProfile(Given{Cloud: "public"}, "contoso", saved)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		given  Given
		want   Wanted
		tenant string
		scopes []string
		kind   failure.Kind // for failures
	}{
		"home tenant, first consented scope": {tenant: home, scopes: []string{graph}},
		"given tenant":                       {given: Given{Tenant: "fabrikam.onmicrosoft.com"}, tenant: "fabrikam.onmicrosoft.com", scopes: []string{graph}},
		"wanted tenant over given":           {given: Given{Tenant: "fabrikam.onmicrosoft.com"}, want: Wanted{Tenant: "contoso.com"}, tenant: "contoso.com", scopes: []string{graph}},
		"alias":                              {want: Wanted{Scopes: []string{"partner-center"}}, tenant: home, scopes: []string{partner}},
		"two resources":                      {want: Wanted{Scopes: []string{"graph", "arm"}}, kind: failure.Usage},
		"common":                             {given: Given{Tenant: "common"}, kind: failure.Usage},
		"Organizations":                      {want: Wanted{Tenant: "Organizations"}, kind: failure.Usage},
		"path in tenant":                     {want: Wanted{Tenant: "a/../b"}, kind: failure.Usage},
		"negative min validity":              {want: Wanted{MinValidity: -1}, kind: failure.Usage},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			key, err := ResolveToken(p, tt.given, tt.want)
			if tt.scopes == nil {
				if failure.KindOf(err) != tt.kind || failure.ProfileOf(err) != "contoso" {
					t.Fatalf("err %v, want kind %v naming the profile", err, tt.kind)
				}
				return
			}
			if err != nil || key.Tenant != tt.tenant || !slices.Equal(key.Scopes, tt.scopes) || key.ClientID != app || key.Profile != "contoso" {
				t.Fatalf("got %+v, %v", key, err)
			}
		})
	}
	unconsented, _ := ResolveProfile(Given{}, "", saved)
	if _, err := ResolveToken(unconsented, Given{}, Wanted{}); failure.KindOf(err) != failure.ConsentNeeded {
		t.Fatalf("a profile without a client id: %v, want consent needed", err)
	}
	if key, _ := ResolveToken(Profile{Profile: profile.Profile{Name: "ci", ClientID: app}}, Given{}, Wanted{}); key.Tenant != "organizations" {
		t.Fatalf("no home tenant: tenant %q, want organizations", key.Tenant)
	}
}

func TestWithCluster(t *testing.T) {
	g, scopes, err := Given{Profile: "flag"}.WithCluster(nil, "cluster", "cluster-tenant", []string{"aks"})
	if err != nil || g.Profile != "flag" || g.Tenant != "cluster-tenant" || !slices.Equal(scopes, []string{"aks"}) {
		t.Fatalf("flags must win, the cluster fill the rest: %+v %v %v", g, scopes, err)
	}
	if _, _, err := (Given{}).WithCluster(nil, "", "", nil); failure.KindOf(err) != failure.Usage {
		t.Fatalf("no scope anywhere: %v, want a usage error", err)
	}
}

func TestVerbose(t *testing.T) {
	for v, want := range map[string]bool{"": false, "  ": false, "1": true, "TRUE": true, "yes": true, "0": false, "no": false} {
		if got, err := Verbose(v); got != want || err != nil {
			t.Errorf("Verbose(%q) = %v, %v", v, got, err)
		}
	}
	if _, err := Verbose("maybe"); failure.KindOf(err) != failure.Usage {
		t.Errorf("Verbose(maybe): %v, want a usage error", err)
	}
}
