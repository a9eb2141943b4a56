package cli

import (
	"testing"

	"github.com/pctoken/pctoken-helper/protocol"
	"github.com/pctoken/pctoken-helper/settings"
)

func TestGitHostPatternNeedsALabel(t *testing.T) {
	g := &GitCredentialCmd{Host: []string{"dev.azure.com", "*.visualstudio.com"}}
	for host, want := range map[string]bool{
		"dev.azure.com":               true,
		"DEV.AZURE.COM":               true,
		"org.visualstudio.com":        true,
		"a.b.visualstudio.com":        true,
		".visualstudio.com":           false,
		"visualstudio.com":            false,
		"..visualstudio.com":          false,
		"a..visualstudio.com":         false,
		"org.visualstudio.com.":       false,
		"dev.azure.com:443":           false, // no pattern names the port
		"evil.com@a.visualstudio.com": false,
		"evil.com#.visualstudio.com":  false,
		"evil.com?.visualstudio.com":  false,
		"":                            false,
	} {
		if got := g.allowed(protocol.GitRequest{Protocol: "https", Host: host}); got != want {
			t.Errorf("allowed(%q) = %v, want %v", host, got, want)
		}
	}
	g.Host = []string{"dev.azure.com:8443"}
	if !g.allowed(protocol.GitRequest{Protocol: "https", Host: "dev.azure.com:8443"}) {
		t.Error("a pattern with a port does not match its host")
	}
}

func TestScopesMustBeText(t *testing.T) {
	for _, bad := range []string{"https://graph.microsoft.com/\xff.default", "a\x1bb/.default", "x\u0085/.default"} {
		if err := settings.CheckScopes([]string{bad}); err == nil {
			t.Errorf("CheckScopes(%q) passed", bad)
		}
	}
	if err := settings.CheckScopes([]string{"https://graph.microsoft.com/.default", "api://é/.default"}); err != nil {
		t.Error(err)
	}
}
