package core

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/cache"
	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/harness"
	"github.com/pctoken/pctoken-helper/securestore"
)

// A refresh token obtained outside the helper is imported from stdin in a fresh
// environment: it is redeemed once, the rotated token is stored, and get works.
func TestImport(t *testing.T) {
	t.Parallel()
	e := harness.New(t)
	outside := deviceCodeRefreshToken(t, e.Sim, entrasim.PublicClientID)
	e.Sim.ResetStats()

	res := e.RunStdin(outside+"\n", "import", "--profile", "imported")
	wantExit(t, res, 0, "import")
	if strings.Contains(res.Stdout+res.Stderr, outside) {
		t.Fatal("import printed the refresh token")
	}
	if res.Stdout != "" {
		t.Fatalf("import wrote to stdout: %q", res.Stdout)
	}
	if !strings.Contains(res.Stderr, entrasim.UserUPN) {
		t.Fatalf("import summary does not name the account:\n%s", res.Stderr)
	}
	if st := e.Sim.Stats(); st.RefreshTokensRedeemed != 1 {
		t.Fatalf("import redeemed %d refresh tokens, want 1", st.RefreshTokensRedeemed)
	}
	stored := storedRefreshToken(t, e, "imported")
	if stored == outside || !e.Sim.RefreshTokenValid(stored) {
		t.Fatal("import did not store the rotated refresh token")
	}
	p := readProfile(t, e, "imported")
	if p["home_tenant"] != entrasim.HomeTenantID || p["client_id"] != entrasim.PublicClientID {
		t.Fatalf("imported profile: %v", p)
	}
	if acct, _ := p["account"].(map[string]any); acct["username"] != entrasim.UserUPN {
		t.Fatalf("imported profile account: %v", p["account"])
	}

	// Strict rotation: get must use the stored, rotated token, not the imported one.
	e.Sim.SetStrictRotation(true)
	tok := decode(t, e.MustRun("get", "--profile", "imported", "--scope", "graph", "--tenant", entrasim.CustomerTenantID).Stdout)
	if tok.TenantID != entrasim.CustomerTenantID || tok.Profile != "imported" {
		t.Fatalf("get after import: %+v", tok)
	}

	// A token that is not a refresh token is refused, and nothing is saved.
	res = e.RunStdin("not-a-refresh-token\n", "import", "--profile", "junk")
	if res.Code == 0 || res.Code == 1 {
		t.Fatalf("import of garbage: exit %d\n%s", res.Code, res.Stderr)
	}
	if _, err := os.Stat(profilePath(e, "junk")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed import saved a profile: %v", err)
	}
	if res := e.RunStdin("", "import", "--profile", "empty"); res.Code != 2 {
		t.Fatalf("import with empty stdin: exit %d\n%s", res.Code, res.Stderr)
	}
}

type statusJSON struct {
	Profiles []struct {
		Name         string     `json:"name"`
		ClientID     string     `json:"client_id"`
		Cloud        string     `json:"cloud"`
		Account      string     `json:"account"`
		HomeTenant   string     `json:"home_tenant"`
		Store        string     `json:"store"`
		Confidential bool       `json:"confidential"`
		RotatedAt    *time.Time `json:"refresh_token_rotated_at"`
		DaysLeft     *int       `json:"days_left"`
		Tokens       []struct {
			Tenant    string    `json:"tenant"`
			TenantID  string    `json:"tenant_id"`
			Scopes    []string  `json:"scopes"`
			ExpiresAt time.Time `json:"expires_at"`
			Expired   bool      `json:"expired"`
		} `json:"cached_tokens"`
	} `json:"profiles"`
}

func status(t *testing.T, e *harness.Env) statusJSON {
	t.Helper()
	var st statusJSON
	out := e.MustRun("status", "--output", "json").Stdout
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status json: %v\n%s", err, out)
	}
	return st
}

func TestStatus(t *testing.T) {
	t.Parallel()
	e := harness.New(t)
	if out := e.MustRun("status").Stdout; !strings.Contains(out, "No profiles") {
		t.Fatalf("status with no profiles: %q", out)
	}
	e.Consent("--profile", "pub")
	consentConfidential(t, e, "csp")
	e.MustRun("get", "--profile", "pub", "--scope", "graph")
	e.MustRun("get", "--profile", "pub", "--scope", "arm", "--tenant", entrasim.CustomerTenantID)
	e.MustRun("get", "--profile", "csp", "--scope", "graph")
	secrets := []string{storedRefreshToken(t, e, "pub"), storedRefreshToken(t, e, "csp"), entrasim.ClientSecret}

	start := time.Now()
	st := status(t, e)
	if len(st.Profiles) != 2 {
		t.Fatalf("status lists %d profiles", len(st.Profiles))
	}
	for _, p := range st.Profiles {
		if p.Account != entrasim.UserUPN || p.HomeTenant != entrasim.HomeTenantID || p.Store != "file" || p.Cloud != "public" {
			t.Errorf("profile %s: %+v", p.Name, p)
		}
		if p.RotatedAt == nil || start.Sub(*p.RotatedAt) > time.Minute || p.DaysLeft == nil || *p.DaysLeft != 90 {
			t.Errorf("profile %s: rotated %v, days left %v", p.Name, p.RotatedAt, p.DaysLeft)
		}
	}
	pub, csp := st.Profiles[1], st.Profiles[0]
	if pub.Name != "pub" || csp.Name != "csp" {
		t.Fatalf("profiles %s, %s", st.Profiles[0].Name, st.Profiles[1].Name)
	}
	if pub.ClientID != entrasim.PublicClientID || pub.Confidential || csp.ClientID != entrasim.ConfidentialClientID || !csp.Confidential {
		t.Errorf("client ids / confidential: %+v %+v", pub, csp)
	}
	if len(pub.Tokens) != 2 || len(csp.Tokens) != 1 {
		t.Fatalf("cached tokens: pub %+v, csp %+v", pub.Tokens, csp.Tokens)
	}
	tenants := map[string]bool{}
	for _, tok := range pub.Tokens {
		tenants[tok.TenantID] = true
		if tok.Expired || tok.ExpiresAt.Before(start) || len(tok.Scopes) != 1 {
			t.Errorf("cached token %+v", tok)
		}
	}
	if !tenants[entrasim.HomeTenantID] || !tenants[entrasim.CustomerTenantID] {
		t.Errorf("cached token tenants %v", tenants)
	}

	text := e.MustRun("status", "--output", "text").Stdout
	for _, want := range []string{"profile", "pub", "csp", entrasim.UserUPN, entrasim.HomeTenantID, entrasim.CustomerTenantID,
		"store", "file", "90 days left", "graph", "arm"} {
		if !strings.Contains(text, want) {
			t.Errorf("status text lacks %q:\n%s", want, text)
		}
	}
	if !regexp.MustCompile(`rotated (just now|\d+s ago)`).MatchString(text) {
		t.Errorf("status text has no rotation time:\n%s", text)
	}
	all := text + e.MustRun("status", "-o", "json").Stdout + e.MustRun("status", "-v").Stderr
	for _, s := range secrets {
		if strings.Contains(all, s) {
			t.Fatal("status shows a refresh token or the client secret")
		}
	}
	// Nor is a secret anywhere in the profile or cache files, which are 0600 in
	// 0700 folders.
	for _, dir := range []string{configDir(e), cacheDir(e)} {
		checkModes(t, dir)
		for _, f := range filesUnder(t, dir) {
			b, _ := os.ReadFile(f)
			for _, s := range secrets {
				if strings.Contains(string(b), s) {
					t.Fatalf("%s holds a secret", f)
				}
			}
		}
	}
}

// checkModes fails the test unless every folder below dir (dir included) is 0700 and
// every file 0600.
func checkModes(t *testing.T, dir string) {
	t.Helper()
	err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if info.IsDir() {
			want = 0o700
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", path, info.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// setRotatedAt moves a profile's last rotation into the past, as if it had not been
// used for a while.
func setRotatedAt(t *testing.T, e *harness.Env, name string, at time.Time) {
	t.Helper()
	p := readProfile(t, e, name)
	p["rotated_at"] = at.UTC().Format(time.RFC3339Nano)
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(profilePath(e, name), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func daysLeft(t *testing.T, e *harness.Env) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, p := range status(t, e).Profiles {
		if p.DaysLeft == nil {
			t.Fatalf("profile %s has no days left", p.Name)
		}
		out[p.Name] = *p.DaysLeft
	}
	return out
}

func TestRenew(t *testing.T) {
	t.Parallel()
	e := harness.New(t)
	e.Consent("--profile", "a")
	e.Consent("--profile", "b")
	now := time.Now()
	setRotatedAt(t, e, "a", now.Add(-40*24*time.Hour))
	setRotatedAt(t, e, "b", now.Add(-70*24*time.Hour))
	if d := daysLeft(t, e); d["a"] != 50 || d["b"] != 20 {
		t.Fatalf("days left before renew: %v", d)
	}

	e.Sim.SetStrictRotation(true)
	rtA := storedRefreshToken(t, e, "a")
	res := e.MustRun("renew", "--profile", "a")
	if strings.TrimSpace(res.Stdout) != "a: renewed, 90 days left" {
		t.Fatalf("renew --profile a printed %q", res.Stdout)
	}
	if d := daysLeft(t, e); d["a"] != 90 || d["b"] != 20 {
		t.Fatalf("days left after renewing a: %v", d)
	}
	if next := storedRefreshToken(t, e, "a"); next == rtA || !e.Sim.RefreshTokenValid(next) {
		t.Fatal("renew did not save a rotated refresh token")
	}

	setRotatedAt(t, e, "a", now.Add(-10*24*time.Hour))
	res = e.MustRun("renew", "--all")
	if got := strings.TrimSpace(res.Stdout); got != "a: renewed, 90 days left\nb: renewed, 90 days left" {
		t.Fatalf("renew --all printed %q", got)
	}
	if d := daysLeft(t, e); d["a"] != 90 || d["b"] != 90 {
		t.Fatalf("days left after renew --all: %v", d)
	}

	// Once a refresh token is dead, renew says which profile needs consent: exit 3.
	e.Consent("--profile", "c")
	e.Sim.ExpireRefreshTokens()
	res = e.Run("renew", "--all")
	wantExit(t, res, 3, "renew --all with expired refresh tokens")
	for _, name := range []string{"a", "b", "c"} {
		if !strings.Contains(res.Stdout, name+": renewal failed") || !strings.Contains(res.Stderr, "hint: pctoken-helper consent --profile "+name) {
			t.Fatalf("renew --all with expired tokens:\nstdout: %s\nstderr: %s", res.Stdout, res.Stderr)
		}
	}
	if !strings.Contains(res.Stderr, "AADSTS700082") {
		t.Fatalf("stderr lacks the AADSTS code:\n%s", res.Stderr)
	}
	res = e.Run("renew", "--profile", "b")
	wantExit(t, res, 3, "renew of one expired profile")
}

func TestRenewOneExpiredAmongGood(t *testing.T) {
	t.Parallel()
	e := harness.New(t)
	e.Consent("--profile", "old")
	e.Sim.ExpireRefreshTokens() // only tokens issued so far
	e.Consent("--profile", "new")
	res := e.Run("renew", "--all")
	wantExit(t, res, 3, "renew --all with one expired profile")
	if !strings.Contains(res.Stdout, "new: renewed, 90 days left") || !strings.Contains(res.Stdout, "old: renewal failed") {
		t.Fatalf("renew --all:\n%s", res.Stdout)
	}
}

func TestLogout(t *testing.T) {
	t.Parallel()
	e := harness.New(t)
	e.Consent("--profile", "kept")
	consentConfidential(t, e, "gone") // a stored secret as well as a refresh token
	if _, err := fileStore(t, e).Get("client-secret:gone"); err != nil {
		t.Fatalf("the client secret was not stored: %v", err)
	}
	e.MustRun("get", "--profile", "gone", "--scope", "graph")
	e.MustRun("get", "--profile", "gone", "--scope", "arm")
	e.MustRun("get", "--profile", "kept", "--scope", "graph")
	cacheEntries := func(profileName string) int {
		c, err := cache.Open(cacheDir(e))
		if err != nil {
			t.Fatal(err)
		}
		entries, err := c.List()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, en := range entries {
			if en.Key.Profile == profileName {
				n++
			}
		}
		return n
	}
	if cacheEntries("gone") != 2 {
		t.Fatal("expected two cached tokens before logout")
	}

	res := e.MustRun("logout", "--profile", "gone")
	if res.Stdout != "" || !strings.Contains(res.Stderr, "gone") {
		t.Fatalf("logout: stdout %q stderr %q", res.Stdout, res.Stderr)
	}
	for _, key := range []string{"refresh-token:gone", "client-secret:gone"} {
		if _, err := fileStore(t, e).Get(key); !errors.Is(err, securestore.ErrNotFound) {
			t.Fatalf("%s after logout: %v", key, err)
		}
	}
	if n := cacheEntries("gone"); n != 0 {
		t.Fatalf("%d cached tokens left after logout", n)
	}
	if _, err := os.Stat(profilePath(e, "gone")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("profile file after logout: %v", err)
	}
	res = e.Run("get", "--profile", "gone", "--scope", "graph")
	// Another profile is saved: "gone" may be a typo of it (exit 2, naming the saved
	// ones), or a profile to consent to again.
	wantExit(t, res, 2, "get after logout")
	if out := decodeError(t, res); !strings.Contains(out.Error.Message, "saved profiles: kept") || !strings.Contains(out.Error.Remedy, "pctoken-helper consent --profile gone") {
		t.Fatalf("get after logout: %+v", out.Error)
	}
	// The other profile is untouched.
	if tok := decode(t, e.MustRun("get", "--profile", "kept", "--scope", "graph").Stdout); !tok.Cached {
		t.Fatal("logout of one profile dropped another's cache")
	}

	e.MustRun("logout", "--all", "--yes")
	if files := filesUnder(t, e.Vars["PCTOKEN_STORE_DIR"]); len(files) != 0 {
		t.Fatalf("logout --all left store files: %v", files)
	}
	if n := cacheEntries("kept"); n != 0 {
		t.Fatalf("logout --all left %d cached tokens", n)
	}
	if st := status(t, e); len(st.Profiles) != 0 {
		t.Fatalf("profiles after logout --all: %+v", st.Profiles)
	}
	wantExit(t, e.Run("get", "--profile", "kept"), 3, "get after logout --all")
}

// CI mode: the refresh token comes from PCTOKEN_REFRESH_TOKEN, there is no store
// and no saved profile; get works and says once that the rotated token is lost: once
// per token, across the processes of a job (each step is one).
func TestCIModeRefreshTokenFromEnvironment(t *testing.T) {
	t.Parallel()
	e := harness.New(t)
	rt := deviceCodeRefreshToken(t, e.Sim, entrasim.PublicClientID)
	for _, k := range []string{"PCTOKEN_STORE", "PCTOKEN_STORE_DIR", "PCTOKEN_FILE_PASSPHRASE"} {
		delete(e.Vars, k)
	}
	e.Vars["PCTOKEN_REFRESH_TOKEN"] = rt
	const notice = "cannot be updated"

	res := e.MustRun("get", "--scope", "graph")
	tok := decode(t, res.Stdout)
	if tok.TenantID != entrasim.HomeTenantID || tok.Cached {
		t.Fatalf("CI get: %+v", tok)
	}
	if n := strings.Count(res.Stderr, notice); n != 1 {
		t.Fatalf("the unsaved-rotation notice appears %d times:\n%s", n, res.Stderr)
	}
	if strings.Contains(res.Stdout+res.Stderr, rt) {
		t.Fatal("the refresh token was printed")
	}

	// A batch redeems the token several times in one process, and later steps of the
	// job refresh again, each a new process: the notice was given, and is not again.
	var reqs strings.Builder
	for i, tenant := range []string{entrasim.HomeTenantID, entrasim.CustomerTenantID, entrasim.CustomerTenantDomain} {
		fmt.Fprintf(&reqs, `{"id":"%d","tenant":%q,"scopes":["arm"]}`+"\n", i, tenant)
	}
	res = e.RunStdin(reqs.String(), "get", "--request", "-")
	wantExit(t, res, 0, "CI batch")
	if n := strings.Count(res.Stdout, `"access_token"`); n != 3 {
		t.Fatalf("CI batch answered %d tokens:\n%s", n, res.Stdout)
	}
	if strings.Contains(res.Stderr, notice) {
		t.Fatalf("the unsaved-rotation notice again, in a later process:\n%s", res.Stderr)
	}
	for range 2 {
		res = e.MustRun("get", "--scope", "graph", "--force-refresh")
		if decode(t, res.Stdout).Cached || strings.Contains(res.Stderr, notice) {
			t.Fatalf("a later step refreshing: cached or the notice again:\n%s", res.Stderr)
		}
	}
	// Another token in the variable (the secret was replaced) is told about once.
	other := deviceCodeRefreshToken(t, e.Sim, entrasim.PublicClientID)
	e.Vars["PCTOKEN_REFRESH_TOKEN"] = other
	for i, want := range []int{1, 0} {
		res = e.MustRun("get", "--scope", "graph", "--force-refresh")
		if n := strings.Count(res.Stderr, notice); n != want {
			t.Fatalf("another token, run %d: the notice %d times, want %d:\n%s", i+1, n, want, res.Stderr)
		}
	}
	// Where nothing can be recorded (here the notes folder is not a folder), the
	// notice is given every time rather than never.
	notes := filepath.Join(cacheDir(e), "notes")
	if err := os.RemoveAll(notes); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(notes, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		res = e.MustRun("get", "--scope", "graph", "--force-refresh")
		if n := strings.Count(res.Stderr, notice); n != 1 {
			t.Fatalf("nothing recordable, run %d: the notice %d times, want 1:\n%s", i+1, n, res.Stderr)
		}
	}
	os.Remove(notes)
	e.Vars["PCTOKEN_REFRESH_TOKEN"] = rt
	// renew redeems the variable's token too; with no saved profile there is no
	// rotation date to count days from, and it says so rather than inventing a count.
	if res = e.MustRun("renew"); res.Stdout != "default: renewed (not saved on this machine: no days left to count)\n" {
		t.Fatalf("CI renew printed %q", res.Stdout)
	}
	// No store was created anywhere, and no refresh token reached the disk.
	if _, err := os.Stat(configDir(e) + "/store"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("CI mode created a store: %v", err)
	}
	for _, f := range filesUnder(t, e.Dir) {
		if b, _ := os.ReadFile(f); strings.Contains(f+string(b), rt) || strings.Contains(f+string(b), other) {
			t.Fatalf("%s holds a refresh token", f)
		}
	}
	// The variable is read-only: the same token keeps working in the next job.
	if !e.Sim.RefreshTokenValid(rt) {
		t.Fatal("the variable's refresh token no longer works")
	}
}

// Settings resolve flag > environment > saved profile.
func TestSettingsPrecedence(t *testing.T) {
	t.Parallel()
	e := harness.New(t)
	e.Consent("--profile", "a")
	e.Consent("--profile", "b")
	delete(e.Vars, "PCTOKEN_CLIENT_ID") // from here on the profile's client id applies

	// Profile: the saved home tenant and client id.
	tok := decode(t, e.MustRun("get", "--profile", "a", "--scope", "graph").Stdout)
	if tok.TenantID != entrasim.HomeTenantID || tok.Profile != "a" {
		t.Fatalf("profile settings: %+v", tok)
	}
	// Environment beats the profile.
	e.Vars["PCTOKEN_PROFILE"] = "b"
	e.Vars["PCTOKEN_TENANT"] = entrasim.CustomerTenantID
	tok = decode(t, e.MustRun("get", "--scope", "graph").Stdout)
	if tok.TenantID != entrasim.CustomerTenantID || tok.Profile != "b" {
		t.Fatalf("environment over profile: %+v", tok)
	}
	// Flags beat the environment.
	tok = decode(t, e.MustRun("get", "--profile", "a", "--tenant", entrasim.HomeTenantID, "--scope", "graph").Stdout)
	if tok.TenantID != entrasim.HomeTenantID || tok.Profile != "a" {
		t.Fatalf("flags over environment: %+v", tok)
	}

	// Client id: the environment beats the profile (the token was issued to another
	// app, so Entra refuses it), and the flag beats the environment.
	e.Vars["PCTOKEN_CLIENT_ID"] = entrasim.ExchangeClientID
	res := e.Run("get", "--profile", "a", "--scope", "arm")
	wantExit(t, res, 5, "PCTOKEN_CLIENT_ID over the profile")
	if out := decodeError(t, res); out.Error.AADSTS != "AADSTS700007" {
		t.Fatalf("PCTOKEN_CLIENT_ID over the profile: %+v", out.Error)
	}
	tok = decode(t, e.MustRun("get", "--profile", "a", "--scope", "arm", "--client-id", entrasim.PublicClientID).Stdout)
	if tok.Cached || tok.TenantID != entrasim.CustomerTenantID {
		t.Fatalf("--client-id over PCTOKEN_CLIENT_ID: %+v", tok)
	}
}
