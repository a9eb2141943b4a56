package core

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/cache"
	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/harness"
)

// cacheEntries is what the cache folder holds, read as another program of the user would.
func cacheEntries(t *testing.T, e *harness.Env) []cache.Entry {
	t.Helper()
	c, err := cache.Open(cacheDir(e))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// TestTenantByDomainThenByIDIsOneRedemption: a customer asked for by its domain and
// then by its tenant id costs one redemption, and status shows one row naming both.
func TestTenantByDomainThenByIDIsOneRedemption(t *testing.T) {
	t.Parallel()
	e := harness.New(t)
	e.Consent("--profile", "msp")
	e.Sim.ResetStats()
	byName := decode(t, e.MustRun("get", "--profile", "msp", "--scope", "arm", "--tenant", entrasim.CustomerTenantDomain).Stdout)
	byID := decode(t, e.MustRun("get", "--profile", "msp", "--scope", "arm", "--tenant", strings.ToUpper(entrasim.CustomerTenantID)).Stdout)
	if n := e.Sim.Stats().Requests["token"]; n != 1 {
		t.Fatalf("domain then id: %d token requests, want 1", n)
	}
	if !byID.Cached || byID.AccessToken != byName.AccessToken || byID.TenantID != entrasim.CustomerTenantID {
		t.Fatalf("by id after by domain: %+v", byID)
	}
	if n := len(cacheEntries(t, e)); n != 2 {
		t.Fatalf("%d cache entries, want 2 (by domain and by id)", n)
	}
	text := e.MustRun("status").Stdout
	row := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(entrasim.CustomerTenantDomain+" ("+entrasim.CustomerTenantID+")") + `\s+arm\s+in (59|60)m$`)
	if !row.MatchString(text) || strings.Count(text, entrasim.CustomerTenantID) != 1 {
		t.Fatalf("status must show one row naming the domain and the id:\n%s", text)
	}
	st := status(t, e)
	if toks := st.Profiles[0].Tokens; len(toks) != 1 || toks[0].Tenant != entrasim.CustomerTenantDomain || toks[0].TenantID != entrasim.CustomerTenantID {
		t.Fatalf("status -o json cached_tokens: %+v", toks)
	}

	// git-credential erase of that token drops both entries: the next get redeems.
	res := e.RunStdin("protocol=https\nhost=dev.azure.com\npassword="+byName.AccessToken+"\n\n", "git-credential", "--profile", "msp", "erase")
	wantExit(t, res, 0, "git-credential erase")
	if n := len(cacheEntries(t, e)); n != 0 {
		t.Fatalf("erase left %d cache entries", n)
	}
	e.Sim.ResetStats()
	e.MustRun("get", "--profile", "msp", "--scope", "arm", "--tenant", entrasim.CustomerTenantID)
	if n := e.Sim.Stats().Requests["token"]; n != 1 {
		t.Fatalf("get after erase: %d token requests, want 1", n)
	}

	// logout drops both entries of a token asked for by name.
	e.MustRun("get", "--profile", "msp", "--scope", "graph", "--tenant", entrasim.CustomerTenantDomain)
	if n := len(cacheEntries(t, e)); n != 3 {
		t.Fatalf("%d cache entries before logout, want 3", n)
	}
	e.MustRun("logout", "--profile", "msp")
	if n := len(cacheEntries(t, e)); n != 0 {
		t.Fatalf("logout left %d cache entries", n)
	}
}

// TestStatusForAPerson: the cached tokens are one aligned table with aliases and
// relative times, expired ones included and marked; --tenant and --scope narrow it; a
// count line ends it; a scope typo is exit 2; json keeps its absolute times.
func TestStatusForAPerson(t *testing.T) {
	t.Parallel()
	e := harness.New(t)
	e.Consent("--profile", "msp")
	e.Sim.SetTokenLifetime(2 * time.Second)
	e.MustRun("get", "--profile", "msp", "--scope", "graph")
	e.Sim.SetTokenLifetime(0)
	e.MustRun("get", "--profile", "msp", "--scope", "arm", "--tenant", entrasim.CustomerTenantID)
	e.MustRun("get", "--profile", "msp", "--scope", "https://graph.microsoft.com/User.Read", "--tenant", entrasim.CustomerTenantDomain)
	e.MustRun("get", "--profile", "msp", "--scope", "azure-devops", "--tenant", entrasim.HomeTenantDomain)
	time.Sleep(3 * time.Second) // the first token expires

	text := e.MustRun("status").Stdout
	t.Logf("status:\n%s", text)
	lines := strings.Split(text, "\n")
	header := slicesIndex(lines, func(l string) bool { return strings.HasPrefix(l, "  TENANT") })
	if header < 0 {
		t.Fatalf("no token table:\n%s", text)
	}
	col := strings.Index(lines[header], "RESOURCE")
	exp := strings.Index(lines[header], "EXPIRES")
	want := []*regexp.Regexp{
		regexp.MustCompile(`^  ` + regexp.QuoteMeta(entrasim.HomeTenantID) + ` \(home\)\s+graph\s+expired \ds ago$`),
		regexp.MustCompile(`^  ` + regexp.QuoteMeta(entrasim.CustomerTenantID) + `\s+arm\s+in (59|60)m$`),
		regexp.MustCompile(`^  ` + regexp.QuoteMeta(entrasim.HomeTenantDomain+" ("+entrasim.HomeTenantID+") (home)") + `\s+azure-devops\s+in (59|60)m$`),
		regexp.MustCompile(`^  ` + regexp.QuoteMeta(entrasim.CustomerTenantDomain+" ("+entrasim.CustomerTenantID+")") + `\s+https://graph.microsoft.com/user.read\s+in (59|60)m$`),
	}
	rows := lines[header+1 : header+1+len(want)]
	for i, re := range want {
		if !re.MatchString(rows[i]) {
			t.Errorf("row %d: %q does not match %s", i, rows[i], re)
		}
	}
	for _, r := range rows {
		// aligned: every row's resource and expiry start under their headings
		if len(r) < exp || r[col-1] != ' ' || r[col] == ' ' || r[exp-1] != ' ' || r[exp] == ' ' {
			t.Errorf("row %q is not aligned with %q", r, lines[header])
		}
	}
	if !strings.Contains(text, "rotated just now, 90 days left") && !regexp.MustCompile(`rotated \d+s ago, 90 days left`).MatchString(text) {
		t.Errorf("the refresh token's age is not relative:\n%s", text)
	}
	if regexp.MustCompile(`\d{4}-\d\d-\d\dT`).MatchString(text) {
		t.Errorf("status text shows an absolute time:\n%s", text)
	}
	if !strings.HasSuffix(text, "\n4 cached tokens, 1 expired\n") {
		t.Errorf("status text does not end with the count line:\n%s", text)
	}

	for _, c := range []struct {
		args  []string
		rows  int
		count string
	}{
		{[]string{"--tenant", entrasim.CustomerTenantID}, 2, "2 of 4 cached tokens match --tenant " + entrasim.CustomerTenantID + ", 0 expired"},
		{[]string{"--tenant", strings.ToUpper(entrasim.CustomerTenantDomain)}, 1, "1 of 4 cached tokens match"},
		{[]string{"--scope", "graph"}, 2, "2 of 4 cached tokens match --scope graph, 1 expired"},
		{[]string{"--tenant", entrasim.CustomerTenantID, "-s", "arm"}, 1, "1 of 4"},
		{[]string{"--tenant", "nowhere.example"}, 0, "cached tokens  none matching --tenant nowhere.example"},
	} {
		out := e.MustRun(append([]string{"status"}, c.args...)...).Stdout
		if n := strings.Count(out, "\n  ") - 1; c.rows > 0 && n != c.rows || !strings.Contains(out, c.count) {
			t.Errorf("status %v: want %d rows and %q:\n%s", c.args, c.rows, c.count, out)
		}
	}
	var js struct {
		Profiles []struct {
			Tokens []map[string]any `json:"cached_tokens"`
		} `json:"profiles"`
	}
	out := e.MustRun("status", "-o", "json", "--scope", "arm").Stdout
	if err := json.Unmarshal([]byte(out), &js); err != nil || len(js.Profiles) != 1 || len(js.Profiles[0].Tokens) != 1 {
		t.Fatalf("status -o json --scope arm: %v\n%s", err, out)
	}
	tok := js.Profiles[0].Tokens[0]
	for _, f := range []string{"tenant", "tenant_id", "scopes", "expires_at", "expired"} {
		if _, ok := tok[f]; !ok {
			t.Errorf("json cached token lacks %s: %v", f, tok)
		}
	}
	if at, _ := tok["expires_at"].(string); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`).MatchString(at) || tok["alias"] != "arm" {
		t.Errorf("json cached token: %v", tok)
	}

	res := e.Run("status", "--scope", "grpah")
	wantExit(t, res, 2, "status --scope grpah")
	if !strings.Contains(res.Stderr, "did you mean graph") || res.Stdout != "" {
		t.Fatalf("status --scope grpah:\n%s%s", res.Stdout, res.Stderr)
	}
	res = e.Run("status", "--tenant", "a/b")
	wantExit(t, res, 2, "status --tenant a/b")
}

// TestStatusShowsTokensOfUnsavedProfiles: in CI mode nothing is saved, but what is
// cached is shown, not left out.
func TestStatusShowsTokensOfUnsavedProfiles(t *testing.T) {
	t.Parallel()
	e := harness.New(t)
	e.Consent("--profile", "ci")
	rt := storedRefreshToken(t, e, "ci")
	e.MustRun("logout", "--profile", "ci")
	e.Vars["PCTOKEN_REFRESH_TOKEN"] = rt
	e.MustRun("get", "--profile", "ci", "--scope", "graph", "--tenant", entrasim.HomeTenantID)
	delete(e.Vars, "PCTOKEN_REFRESH_TOKEN")
	text := e.MustRun("status").Stdout
	if !regexp.MustCompile(`(?m)^profile\s+ci \(not saved`).MatchString(text) || !strings.Contains(text, entrasim.HomeTenantID) || !strings.Contains(text, "1 cached token, 0 expired") {
		t.Fatalf("status in CI mode:\n%s", text)
	}
	out := e.MustRun("status", "-o", "json").Stdout
	var js struct {
		Profiles []any `json:"profiles"`
		Unsaved  []struct {
			Name   string `json:"name"`
			Tokens []any  `json:"cached_tokens"`
		} `json:"unsaved_profiles"`
	}
	if err := json.Unmarshal([]byte(out), &js); err != nil || len(js.Profiles) != 0 || len(js.Unsaved) != 1 || js.Unsaved[0].Name != "ci" || len(js.Unsaved[0].Tokens) != 1 {
		t.Fatalf("status -o json in CI mode: %v\n%s", err, out)
	}
	if strings.Contains(text+out, rt) {
		t.Fatal("status shows the refresh token")
	}
}

func slicesIndex(lines []string, f func(string) bool) int {
	for i, l := range lines {
		if f(l) {
			return i
		}
	}
	return -1
}

// TestStatusRecipes runs docs/commands.md's status recipes in sh, as a reader pastes
// them: the narrowing commands show only what they name, and the jq recipe lists the
// expired token.
func TestStatusRecipes(t *testing.T) {
	t.Parallel()
	e := harness.New(t)
	e.Consent()
	e.Sim.SetTokenLifetime(2 * time.Second)
	e.MustRun("get", "--scope", "arm", "--tenant", entrasim.CustomerTenantDomain)
	e.Sim.SetTokenLifetime(0)
	e.MustRun("get", "--scope", "graph", "--tenant", entrasim.CustomerTenantDomain)
	e.MustRun("get", "--scope", "graph")
	time.Sleep(3 * time.Second)

	out := runRecipe(t, e, docRecipe(t, "commands.md", "status-narrow"))
	blocks := strings.Split(out, "\nprofile ")
	if len(blocks) != 3 {
		t.Fatalf("three commands, %d outputs:\n%s", len(blocks), out)
	}
	for i, want := range []string{"2 of 3 cached tokens match --tenant fabrikam.onmicrosoft.com, 1 expired", "1 of 3 cached tokens match --scope arm, 1 expired", "1 of 3 cached tokens match --tenant " + entrasim.CustomerTenantID + " --scope graph, 0 expired"} {
		if !strings.Contains(blocks[i], want) {
			t.Errorf("recipe command %d: want %q:\n%s", i+1, want, blocks[i])
		}
	}
	expired := runRecipe(t, e, docRecipe(t, "commands.md", "status-expired"))
	if expired != "default "+entrasim.CustomerTenantDomain+" arm\n" {
		t.Errorf("the expired-tokens recipe printed %q", expired)
	}
}

// docRecipe is the fenced block after <!-- test: name --> in docs/page.
func docRecipe(t *testing.T, page, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", page))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- test: "+name+" -->\n```sh\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatalf("docs/%s has no recipe %s", page, name)
	}
	return block
}

// runRecipe runs script in sh with pctoken-helper on PATH, in a temp folder.
func runRecipe(t *testing.T, e *harness.Env, script string) string {
	t.Helper()
	bin := t.TempDir()
	if err := os.Symlink(e.Bin, filepath.Join(bin, "pctoken-helper")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-e", "-c", script)
	cmd.Dir = t.TempDir()
	cmd.Env = append(e.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("recipe: %v\n%s\nstderr: %s", err, script, stderr.String())
	}
	return string(out)
}

// TestStatusOfThreeHundredCustomers: 312 cached tokens (15 expired) end with a count
// line, and --tenant finds one customer's row among them.
func TestStatusOfThreeHundredCustomers(t *testing.T) {
	t.Parallel()
	e := harness.New(t)
	e.Consent()
	c, err := cache.Open(cacheDir(e))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tenant := func(i int) string { return fmt.Sprintf("0f1e2d3c-0000-4000-8000-%012d", i) }
	for i := range 312 {
		exp := now.Add(time.Hour)
		if i < 15 {
			exp = now.Add(-time.Hour)
		}
		k := cache.Key{Profile: "default", ClientID: entrasim.PublicClientID, Authority: e.Sim.URL(), Tenant: tenant(i), Scopes: []string{"https://management.azure.com/user_impersonation"}}
		if err := c.Store(k, cache.Entry{AccessToken: fmt.Sprintf("token-%d", i), ExpiresOn: exp, TenantID: tenant(i)}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	text := e.MustRun("status").Stdout
	t.Logf("status of 312 cached tokens: %v", time.Since(start))
	if !strings.HasSuffix(text, "\n312 cached tokens, 15 expired\n") || strings.Count(text, "  arm  ") != 312 {
		t.Fatalf("status of 312 cached tokens ends with:\n%s", text[max(0, len(text)-300):])
	}
	text = e.MustRun("status", "--tenant", tenant(200)).Stdout
	if strings.Count(text, " arm ") != 1 || !strings.Contains(text, tenant(200)) || !strings.HasSuffix(text, "\n1 of 312 cached tokens match --tenant "+tenant(200)+", 0 expired\n") {
		t.Fatalf("status --tenant among 312:\n%s", text)
	}
}
