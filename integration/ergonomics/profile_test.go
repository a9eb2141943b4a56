package ergonomics

import (
	"strings"
	"testing"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
)

type listed struct {
	Profiles []struct {
		Name       string `json:"name"`
		ClientID   string `json:"client_id"`
		Cloud      string `json:"cloud"`
		Account    string `json:"account"`
		HomeTenant string `json:"home_tenant"`
		Store      string `json:"store"`
		DaysLeft   *int   `json:"days_left"`
	} `json:"profiles"`
}

func TestProfileListAndShow(t *testing.T) {
	e := newEnv(t)

	// Nothing saved: an empty list, and show says consent is needed, with a hint
	// that works as written.
	res := e.MustRun("profile", "list", "-o", "json")
	var l listed
	decodeJSON(t, res.Stdout, &l)
	if l.Profiles == nil || len(l.Profiles) != 0 {
		t.Fatalf("list of nothing: %s", res.Stdout)
	}
	res = e.Run("profile", "show", "contoso")
	if res.Code != 3 || !strings.Contains(res.Stderr, "hint: pctoken-helper consent --profile contoso --client-id ID") {
		t.Fatalf("show with no profiles: exit %d\n%s", res.Code, res.Stderr)
	}

	e.Consent("--profile", "contoso")
	e.Consent("--profile", "fabrikam")

	res = e.MustRun("profile", "list", "-o", "json")
	decodeJSON(t, res.Stdout, &l)
	if len(l.Profiles) != 2 || l.Profiles[0].Name != "contoso" || l.Profiles[1].Name != "fabrikam" {
		t.Fatalf("list: %s", res.Stdout)
	}
	p := l.Profiles[0]
	if p.ClientID != entrasim.PublicClientID || p.Cloud != "public" || p.Account != entrasim.UserUPN ||
		p.HomeTenant != entrasim.HomeTenantID || p.Store != "file" || p.DaysLeft == nil || *p.DaysLeft != 90 {
		t.Fatalf("list entry: %+v (days left %v)", p, p.DaysLeft)
	}

	res = e.MustRun("profile", "list")
	lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[1], "contoso ") {
		t.Fatalf("text list:\n%s", res.Stdout)
	}
	// Columns line up: every row has its client id where the header has CLIENT ID.
	col := strings.Index(lines[0], "CLIENT ID")
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l[col:], entrasim.PublicClientID) {
			t.Fatalf("columns are not aligned:\n%s", res.Stdout)
		}
	}

	res = e.MustRun("profile", "show", "fabrikam")
	for _, want := range []string{"profile", "fabrikam", entrasim.PublicClientID, entrasim.UserUPN, "90 days left"} {
		if !strings.Contains(res.Stdout, want) {
			t.Fatalf("show lacks %q:\n%s", want, res.Stdout)
		}
	}
	// No name: the --profile given (here by its variable).
	e.Vars["PCTOKEN_PROFILE"] = "fabrikam"
	if res := e.MustRun("profile", "show"); !strings.HasPrefix(res.Stdout, "profile ") || !strings.Contains(res.Stdout, "fabrikam") {
		t.Fatalf("show without a name:\n%s", res.Stdout)
	}
	delete(e.Vars, "PCTOKEN_PROFILE")
	res = e.MustRun("profile", "show", "contoso", "-o", "json")
	var one struct {
		Name     string `json:"name"`
		DaysLeft int    `json:"days_left"`
	}
	decodeJSON(t, res.Stdout, &one)
	if one.Name != "contoso" || one.DaysLeft != 90 {
		t.Fatalf("show json: %s", res.Stdout)
	}

	// A typo: exit 2, the nearest saved profile named, all of them listed.
	res = e.Run("profile", "show", "contosso")
	if res.Code != 2 || !strings.Contains(res.Stderr, "did you mean contoso?") ||
		!strings.Contains(res.Stderr, "saved profiles: contoso, fabrikam") || res.Stdout != "" {
		t.Fatalf("typo: exit %d\nstdout: %s\nstderr: %s", res.Code, res.Stdout, res.Stderr)
	}
	// Nothing near: still exit 2 with the list.
	res = e.Run("profile", "show", "northwind")
	if res.Code != 2 || strings.Contains(res.Stderr, "did you mean") || !strings.Contains(res.Stderr, "contoso, fabrikam") {
		t.Fatalf("unknown: exit %d\n%s", res.Code, res.Stderr)
	}
	res = e.Run("profile", "show", "../x")
	if res.Code != 2 {
		t.Fatalf("invalid name: exit %d\n%s", res.Code, res.Stderr)
	}
	noSecret(t, res.Stdout, res.Stderr)
	for _, args := range [][]string{{"profile", "list"}, {"profile", "list", "-o", "json"}, {"profile", "show", "contoso", "-o", "json"}} {
		r := e.MustRun(args...)
		noSecret(t, r.Stdout, r.Stderr)
	}
}
