package cloud

import "testing"

func TestScopeAliases(t *testing.T) {
	pub, _ := Lookup("")
	gov, _ := Lookup("usgov")
	tests := []struct {
		c    Cloud
		in   string
		want string
	}{
		{pub, "graph", "https://graph.microsoft.com/.default"},
		{pub, "Partner-Center", "https://api.partnercenter.microsoft.com/user_impersonation"},
		{gov, "arm", "https://management.usgovcloudapi.net/user_impersonation"},
		{gov, "azure-devops", "499b84ac-1321-427f-aa17-267ca6975798/.default"},
		{pub, "aks", "6dae42f8-4368-4678-94ff-3960e28e3630/.default"},
		{pub, "https://example.com/.default", "https://example.com/.default"},
	}
	for _, tt := range tests {
		if got := tt.c.Scope(tt.in); got != tt.want {
			t.Errorf("%s.Scope(%q) = %q, want %q", tt.c.Name, tt.in, got, tt.want)
		}
	}
	for _, name := range Names() {
		c, _ := Lookup(name)
		for _, a := range Aliases() {
			if c.Scope(a) == a {
				t.Errorf("alias %q is not defined in cloud %s", a, name)
			}
		}
	}
}

func TestLookupUnknown(t *testing.T) {
	if _, err := Lookup("mars"); err == nil {
		t.Fatal("Lookup(mars) succeeded")
	}
}

func TestNormalizeAuthorityHost(t *testing.T) {
	good := map[string]string{
		"https://127.0.0.1:8443":             "https://127.0.0.1:8443",
		"https://Login.MicrosoftOnline.com/": "https://login.microsoftonline.com",
	}
	for in, want := range good {
		got, err := NormalizeAuthorityHost(in)
		if err != nil || got != want {
			t.Errorf("NormalizeAuthorityHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"http://127.0.0.1", "127.0.0.1:8443", "https://h/tenant", "https://u:p@h", ""} {
		if _, err := NormalizeAuthorityHost(bad); err == nil {
			t.Errorf("NormalizeAuthorityHost(%q) succeeded", bad)
		}
	}
	if !IsMicrosoftHost("https://login.microsoftonline.us") || IsMicrosoftHost("https://127.0.0.1:8443") {
		t.Error("IsMicrosoftHost misclassifies hosts")
	}
}

// AliasOf is Scope read backwards, in every cloud, whatever the case of the scope.
func TestAliasOf(t *testing.T) {
	for _, name := range Names() {
		c, _ := Lookup(name)
		for _, a := range Aliases() {
			if got := c.AliasOf(c.Scope(a)); got != a {
				t.Errorf("%s: AliasOf(Scope(%q)) = %q", name, a, got)
			}
		}
	}
	pub, _ := Lookup("")
	for in, want := range map[string]string{
		"HTTPS://GRAPH.MICROSOFT.COM/.default":                    "graph",
		"https://graph.microsoft.com/User.Read":                   "",
		"https://management.usgovcloudapi.net/x":                  "",
		"https://management.usgovcloudapi.net/user_impersonation": "",
		"graph":  "",
		"openid": "",
		"":       "",
	} {
		if got := pub.AliasOf(in); got != want {
			t.Errorf("public AliasOf(%q) = %q, want %q", in, got, want)
		}
	}
}
