package consumers

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
)

// answer is one --request answer line.
type answer struct {
	ID json.RawMessage `json:"id"`
	jsonToken
	Error *struct {
		Code    string `json:"code"`
		AADSTS  string `json:"aadsts"`
		Message string `json:"message"`
		Remedy  string `json:"remedy"`
	} `json:"error"`
}

// parseAnswers reads answer lines; every line must be one JSON object with an id.
func parseAnswers(t *testing.T, out string) map[string]answer {
	t.Helper()
	m := map[string]answer{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var a answer
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("answer line is not JSON: %v\n%s", err, sc.Text())
		}
		if a.ID == nil {
			t.Fatalf("answer without id: %s", sc.Text())
		}
		id := string(a.ID)
		if _, dup := m[id]; dup {
			t.Fatalf("two answers for id %s", id)
		}
		m[id] = a
	}
	return m
}

// tenantGUID is the id of the n-th generated customer tenant.
func tenantGUID(n int) string { return fmt.Sprintf("7e5a0000-0000-4000-8000-%012d", n) }

// TestBatchThousandTenants runs the docs' walk-tenants.sh over 1,000 customer tenants,
// then again (all from the cache), and reports the figures.
func TestBatchThousandTenants(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 100
	}
	e := newEnv(t)
	e.Consent("--profile", "contoso")
	var tenants strings.Builder
	for i := range n {
		e.Sim.AddTenant(tenantGUID(i), fmt.Sprintf("customer%04d.onmicrosoft.com", i))
		fmt.Fprintln(&tenants, tenantGUID(i))
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tenants.txt"), []byte(tenants.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "walk-tenants.sh")
	if err := os.WriteFile(script, []byte(recipe(t, "batch.md", "batch-walk")), 0o755); err != nil {
		t.Fatal(err)
	}
	walk := func() (map[string]answer, time.Duration, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := e.command(ctx, nil, "/bin/sh", script)
		cmd.Dir = dir
		start := time.Now()
		_, stderr, code := run(t, cmd, "")
		took := time.Since(start)
		if code != 0 {
			t.Fatalf("walk-tenants.sh: exit %d\n%s", code, stderr)
		}
		out, err := os.ReadFile(filepath.Join(dir, "answers.ndjson"))
		if err != nil {
			t.Fatal(err)
		}
		return parseAnswers(t, string(out)), took, strings.TrimSpace(stderr)
	}

	e.Sim.ResetStats()
	answers, took, summary := walk()
	st := e.Sim.Stats()
	if len(answers) != n {
		t.Fatalf("%d answers for %d tenants", len(answers), n)
	}
	if summary != fmt.Sprintf("%d tokens, 0 failures", n) {
		t.Errorf("the script's summary: %q", summary)
	}
	for i := range n {
		id := tenantGUID(i)
		a, ok := answers[`"`+id+`"`]
		if !ok || a.Error != nil {
			t.Fatalf("tenant %s: %+v", id, a)
		}
		c, err := e.Sim.ValidateAccessToken(a.AccessToken)
		if err != nil || c.TenantID != id || a.TenantID != id || c.Audience != "https://graph.microsoft.com" {
			t.Fatalf("tenant %s: token of %s for %s (%v)", id, c.TenantID, c.Audience, err)
		}
	}
	if got := st.Grants["refresh_token"]; got != n {
		t.Errorf("%d refresh-token redemptions for %d tenants, want one each", got, n)
	}
	t.Logf("%d tenants, --parallel 16: %v (%.1f ms per tenant); %d token requests, %d openid-configuration fetches",
		n, took.Round(time.Millisecond), float64(took.Microseconds())/1000/float64(n), st.Requests["token"], st.Requests["openid-configuration"])

	e.Sim.ResetStats()
	answers, took, _ = walk()
	cached := 0
	for _, a := range answers {
		if a.Cached {
			cached++
		}
	}
	if cached != n || e.Sim.Stats().Requests["token"] != 0 {
		t.Errorf("second walk: %d of %d cached, %d token requests", cached, n, e.Sim.Stats().Requests["token"])
	}
	t.Logf("the same %d tenants again, all cached: %v", n, took.Round(time.Millisecond))

	// The docs' jq line lists failures; here there are none.
	if jq, err := exec.LookPath("jq"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := e.command(ctx, nil, "/bin/sh", "-c", recipe(t, "batch.md", "batch-failures"))
		cmd.Dir = dir
		if out, stderr, code := run(t, cmd, ""); code != 0 || out != "" {
			t.Errorf("%s: exit %d, %q %s", jq, code, out, stderr)
		}
	}
}

// TestBatchFailuresDoNotStopOthers mixes malformed lines, a tenant without access
// and an unknown profile with good requests: each line gets its answer, the good ones
// tokens, and the exit code is the first failure's (2: a malformed line comes first).
func TestBatchFailuresDoNotStopOthers(t *testing.T) {
	e := newEnv(t)
	e.Consent()
	lines := strings.Join([]string{
		`{"id":"bad-scopes","scopes":"graph"}`,
		`{"id":"home","scopes":["graph"]}`,
		`this is not JSON`,
		``,
		`{"id":42,"tenant":"` + entrasim.CustomerTenantDomain + `","scopes":["arm"]}`,
		`{"id":"42","tenant":"` + entrasim.CustomerTenantID + `","scopes":["graph"]}`,
		`{"id":"typo","scope":["graph"]}`,
		`{"id":"no-access","tenant":"` + entrasim.OtherTenantID + `","scopes":["graph"]}`,
		`{"id":"nobody","profile":"nobody","scopes":["graph"]}`,
		`{"id":"last","scopes":["partner-center"],"force_refresh":true,"min_validity_seconds":60}`,
	}, "\n") + "\n"
	res := e.RunStdin(lines, "get", "--request", "-", "--parallel", "3")
	if res.Code != 2 {
		t.Errorf("exit %d, want 2 (the first failure is a malformed line)\n%s", res.Code, res.Stderr)
	}
	answers := parseAnswers(t, res.Stdout)
	if len(answers) != 9 {
		t.Fatalf("%d answers for 9 requests:\n%s", len(answers), res.Stdout)
	}
	for id, tenant := range map[string]string{`"home"`: entrasim.HomeTenantID, `42`: entrasim.CustomerTenantID, `"42"`: entrasim.CustomerTenantID, `"last"`: entrasim.HomeTenantID} {
		a := answers[id]
		if a.Error != nil {
			t.Errorf("%s: %+v", id, a.Error)
			continue
		}
		if c, err := e.Sim.ValidateAccessToken(a.AccessToken); err != nil || c.TenantID != tenant {
			t.Errorf("%s: token of %s: %v", id, c.TenantID, err)
		}
	}
	if a := answers[`42`]; len(a.Scopes) == 0 || a.Scopes[0] != "https://management.azure.com/user_impersonation" {
		t.Errorf("id 42 (a number) got the answer of another request: %v", a.Scopes)
	}
	for id, code := range map[string]string{`"bad-scopes"`: "bad_input", `null`: "bad_input", `"typo"`: "bad_input", `"no-access"`: "", `"nobody"`: "bad_input"} {
		a := answers[id]
		if a.Error == nil || a.AccessToken != "" {
			t.Errorf("%s: want an error answer, got %+v", id, a)
			continue
		}
		if code != "" && a.Error.Code != code {
			t.Errorf("%s: error code %q, want %q (%s)", id, a.Error.Code, code, a.Error.Message)
		}
	}
	if a := answers[`null`]; !strings.Contains(a.Error.Message, "line 3") {
		t.Errorf("the unreadable line's answer does not say which line: %q", a.Error.Message)
	}
	// "nobody" is no saved profile while "default" is: a usage error that lists them.
	if a := answers[`"nobody"`]; !strings.Contains(a.Error.Message, "saved profiles: default") || !strings.Contains(a.Error.Remedy, "pctoken-helper consent --profile nobody") {
		t.Errorf("remedy for profile nobody: %q", a.Error.Remedy)
	}

	// Without malformed lines the exit code is the first failure's: here the only one.
	res = e.RunStdin(`{"id":"home","scopes":["graph"]}`+"\n"+`{"id":"no-access","tenant":"`+entrasim.OtherTenantID+`","scopes":["graph"]}`+"\n", "get", "--request", "-")
	answers = parseAnswers(t, res.Stdout)
	if answers[`"home"`].Error != nil || answers[`"no-access"`].Error == nil {
		t.Fatalf("answers: %s", res.Stdout)
	}
	if want := exitOf(answers[`"no-access"`].Error.Code); res.Code != want {
		t.Errorf("exit %d, want %d for %q", res.Code, want, answers[`"no-access"`].Error.Code)
	}
	// All good: exit 0; from a file, too.
	file := writeFile(t, "requests.ndjson", "\xef\xbb\xbf"+`{"id":1,"scopes":["graph"]}`+"\n"+`{"id":2,"tenant":"`+entrasim.CustomerTenantDomain+`"}`+"\n")
	res = e.Run("get", "--request", file)
	if answers := parseAnswers(t, res.Stdout); res.Code != 0 || len(answers) != 2 || answers["1"].Error != nil || answers["2"].Error != nil {
		t.Errorf("from a file: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
}

// exitOf is the exit code of an error code (docs/protocols.md).
func exitOf(code string) int {
	return map[string]int{"bad_input": 2, "consent_required": 3, "transient": 4, "configuration": 5, "internal": 1}[code]
}

// TestBatchParallelIsBounded: with each token taking a second at the identity
// provider, --parallel 2 cannot answer 6 requests in under 3 seconds, and --parallel
// 6 answers them faster than one at a time ever could (6 seconds).
func TestBatchParallelIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 6 seconds")
	}
	e := newEnv(t)
	e.Consent()
	const latency = time.Second
	e.Sim.SetLatency(latency)
	var req strings.Builder
	for i := range 6 {
		e.Sim.AddTenant(tenantGUID(i), "")
		fmt.Fprintf(&req, `{"id":%d,"tenant":"%s","scopes":["graph"],"force_refresh":true}`+"\n", i, tenantGUID(i))
	}
	for _, tt := range []struct {
		parallel string
		check    func(time.Duration) bool
		want     string
	}{
		{"2", func(d time.Duration) bool { return d >= 3*latency }, "at least 3s"},
		{"6", func(d time.Duration) bool { return d < 5*latency }, "under 5s"},
	} {
		start := time.Now()
		res := e.RunStdin(req.String(), "get", "--request", "-", "--parallel", tt.parallel)
		took := time.Since(start)
		if res.Code != 0 || len(parseAnswers(t, res.Stdout)) != 6 {
			t.Fatalf("--parallel %s: exit %d\n%s", tt.parallel, res.Code, res.Stderr)
		}
		if !tt.check(took) {
			t.Errorf("--parallel %s: 6 requests of %v each took %v, want %s", tt.parallel, latency, took, tt.want)
		}
		t.Logf("--parallel %s: %v", tt.parallel, took.Round(time.Millisecond))
	}
	if res := e.Run("get", "--request", "-", "--parallel", "0"); res.Code != 2 {
		t.Errorf("--parallel 0: exit %d", res.Code)
	}
}

// TestBatchMetadataKeptOnDisk: a tenant's OpenID metadata is fetched once; a later
// run that redeems the refresh token again for the same tenants needs only the token
// requests (docs/batch.md counts on it).
func TestBatchMetadataKeptOnDisk(t *testing.T) {
	e := newEnv(t)
	e.Consent()
	var req strings.Builder
	for i := range 10 {
		e.Sim.AddTenant(tenantGUID(i), "")
		fmt.Fprintf(&req, `{"id":%d,"tenant":"%s","scopes":["graph"]}`+"\n", i, tenantGUID(i))
	}
	e.Sim.ResetStats()
	if res := e.RunStdin(req.String(), "get", "--request", "-"); res.Code != 0 {
		t.Fatalf("exit %d\n%s", res.Code, res.Stderr)
	}
	first := e.Sim.Stats()
	e.Sim.ResetStats()
	if res := e.RunStdin(req.String(), "get", "--request", "-", "--force-refresh"); res.Code != 0 {
		t.Fatalf("exit %d\n%s", res.Code, res.Stderr)
	}
	again := e.Sim.Stats()
	t.Logf("first run: %v; again: %v", first.Requests, again.Requests)
	if again.Requests["token"] != 10 || again.Requests["openid-configuration"] != 0 {
		t.Errorf("second run made requests %v, want 10 token requests and no metadata", again.Requests)
	}
}
