package settings

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/pctoken/pctoken-helper/cloud"
)

func TestScopes(t *testing.T) {
	pub, _ := cloud.Lookup("public")
	tests := []struct {
		consented, given, want []string
	}{
		{nil, nil, []string{"https://api.partnercenter.microsoft.com/user_impersonation"}},
		{[]string{"graph", "arm"}, nil, []string{"https://graph.microsoft.com/.default"}},
		{nil, []string{"graph,arm", "aks"}, []string{"https://graph.microsoft.com/.default", "https://management.azure.com/user_impersonation", "6dae42f8-4368-4678-94ff-3960e28e3630/.default"}},
		{nil, []string{" ", ""}, []string{"https://api.partnercenter.microsoft.com/user_impersonation"}},
	}
	for _, tt := range tests {
		if got := Scopes(pub, tt.consented, tt.given); !slices.Equal(got, tt.want) {
			t.Errorf("Scopes(%v, %v) = %v, want %v", tt.consented, tt.given, got, tt.want)
		}
	}
}

func TestIDs(t *testing.T) {
	for id, want := range map[string]bool{
		"0f1e2d3c-0000-4000-8000-00000000a001": true,
		"0F1E2D3C-0000-4000-8000-00000000A001": true,
		"0f1e2d3c-0000-4000-8000-00000000a00":  false,
		"0f1e2d3c_0000-4000-8000-00000000a001": false,
		"not-a-guid":                           false,
	} {
		if IsGUID(id) != want {
			t.Errorf("IsGUID(%q) = %v", id, !want)
		}
	}
	for tenant, want := range map[string]bool{
		"contoso.onmicrosoft.com": true, "organizations": true, "0f1e2d3c-0000-4000-8000-00000000c0de": true,
		"": false, "../x": false, "a/b": false, "a..b": false, ".a": false, "a b": false, "a%2fb": false,
		strings.Repeat("a", 254): false,
	} {
		if IsTenant(tenant) != want {
			t.Errorf("IsTenant(%q) = %v", tenant, !want)
		}
	}
}

func TestDir(t *testing.T) {
	if d, _ := Dir("/x", nil); d != "/x" {
		t.Errorf("flag: %q", d)
	}
	if d, _ := Dir("", func() (string, error) { return "/cachedir", nil }); d != "/cachedir/pctoken-helper" {
		t.Errorf("default: %q", d)
	}
	if _, err := Dir("", func() (string, error) { return "", errors.New("no home") }); err == nil {
		t.Error("no user dir: no error")
	}
}
