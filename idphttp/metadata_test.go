package idphttp

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
)

const tenant = "11111111-2222-3333-4444-555555555555"

// idp is a small identity provider on a real TLS server: an openid-configuration per
// tenant, instance discovery, and a token endpoint answering client credentials.
type idp struct {
	srv *httptest.Server

	mu         sync.Mutex
	requests   []string // "METHOD path"
	metaStatus int      // status of metadata GETs; 0 means 200
	metaBody   string   // body of metadata GETs; "" means the real document
	tokenCodes []int    // statuses of the first token POSTs, then 200
}

func newIDP(t testing.TB) *idp {
	t.Helper()
	p := &idp{}
	p.srv = httptest.NewTLSServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.requests = append(p.requests, r.Method+" "+r.URL.Path)
	metaStatus, metaBody := p.metaStatus, p.metaBody
	var tokenCode int
	if r.Method == http.MethodPost && len(p.tokenCodes) > 0 {
		tokenCode, p.tokenCodes = p.tokenCodes[0], p.tokenCodes[1:]
	}
	p.mu.Unlock()

	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	switch {
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, openIDConfigSuffix):
		if metaStatus != 0 {
			w.WriteHeader(metaStatus)
		}
		if metaBody != "" {
			io.WriteString(w, metaBody)
			return
		}
		t := strings.TrimSuffix(r.URL.Path, openIDConfigSuffix)
		json.NewEncoder(w).Encode(map[string]string{
			"issuer":                 p.srv.URL + t + "/v2.0",
			"authorization_endpoint": p.srv.URL + t + "/oauth2/v2.0/authorize",
			"token_endpoint":         p.srv.URL + t + "/oauth2/v2.0/token",
		})
	case r.Method == http.MethodGet && r.URL.Path == instanceDiscovery:
		fmt.Fprintf(w, `{"tenant_discovery_endpoint":%q,"api-version":"1.1","metadata":[]}`, r.URL.Query().Get("authorization_endpoint"))
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token"):
		if tokenCode != 0 {
			w.WriteHeader(tokenCode)
			io.WriteString(w, `{"error":"temporarily_unavailable"}`)
			return
		}
		io.WriteString(w, `{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"at-not-a-secret"}`)
	default:
		http.NotFound(w, r)
	}
}

// take returns the requests seen since the last call.
func (p *idp) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.requests
	p.requests = nil
	return r
}

func (p *idp) configURL(t string) string {
	return p.srv.URL + "/" + t + openIDConfigSuffix
}

// process builds the transports a fresh helper process would: nothing shared with
// earlier ones but dir.
func (p *idp) process(o MetadataOptions) *http.Client {
	return &http.Client{Transport: NewMetadataTransport(p.srv.Client().Transport, o)}
}

func get(t testing.TB, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func sameJSON(t *testing.T, a, b string) {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatalf("%q: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	if fmt.Sprint(x) != fmt.Sprint(y) {
		t.Fatalf("documents differ:\n%s\n%s", a, b)
	}
}

func cacheFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestSecondProcessMakesNoMetadataRequest(t *testing.T) {
	p := newIDP(t)
	dir := filepath.Join(t.TempDir(), "cache", "metadata")
	url := p.configURL(tenant)

	code, first := get(t, p.process(MetadataOptions{Dir: dir}), url)
	if code != 200 || len(p.take()) != 1 {
		t.Fatalf("first process: %d", code)
	}
	code, second := get(t, p.process(MetadataOptions{Dir: dir}), url)
	if code != 200 {
		t.Fatalf("second process: %d", code)
	}
	if got := p.take(); len(got) != 0 {
		t.Fatalf("second process sent %q, want nothing", got)
	}
	sameJSON(t, first, second)

	// MSAL asks with an empty query ("...configuration?"): the same document.
	if code, _ := get(t, p.process(MetadataOptions{Dir: dir}), url+"?"); code != 200 || len(p.take()) != 0 {
		t.Fatalf("trailing '?' missed the cache")
	}
	// Another tenant is another document.
	get(t, p.process(MetadataOptions{Dir: dir}), p.configURL("contoso.onmicrosoft.com"))
	if got := p.take(); len(got) != 1 {
		t.Fatalf("another tenant: %q, want one request", got)
	}

	files := cacheFiles(t, dir)
	if len(files) != 2 {
		t.Fatalf("files %q, want two documents and no leftovers", files)
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, want mode 0700", d, fi.Mode())
		}
	}
	for _, f := range files {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f, fi.Mode())
		}
	}
}

func TestInstanceDiscoveryIsKeptPerURL(t *testing.T) {
	p := newIDP(t)
	dir := t.TempDir()
	discovery := func(t string) string {
		return p.srv.URL + instanceDiscovery + "?api-version=1.1&authorization_endpoint=" +
			p.srv.URL + "/" + t + "/oauth2/v2.0/authorize"
	}
	for range 2 {
		if code, body := get(t, p.process(MetadataOptions{Dir: dir}), discovery(tenant)); code != 200 || !strings.Contains(body, tenant) {
			t.Fatalf("%d %s", code, body)
		}
	}
	if got := p.take(); len(got) != 1 {
		t.Fatalf("requests %q, want one", got)
	}
	if _, body := get(t, p.process(MetadataOptions{Dir: dir}), discovery("other")); !strings.Contains(body, "/other/") {
		t.Fatalf("another tenant's discovery served %s", body)
	}
}

func TestMetadataExpiresAfterMaxAge(t *testing.T) {
	p := newIDP(t)
	dir := t.TempDir()
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(now time.Time) *http.Client {
		return p.process(MetadataOptions{Dir: dir, MaxAge: time.Hour, Now: func() time.Time { return now }})
	}
	for _, step := range []struct {
		now      time.Time
		requests int
	}{
		{start, 1}, // stored
		{start.Add(time.Hour - time.Nanosecond), 0}, // still fresh
		{start.Add(time.Hour), 1},                   // expired: fetched and stored again
		{start.Add(90 * time.Minute), 0},            // the new copy is fresh
		{start, 1},                                  // dated in the future (clock stepped back)
	} {
		get(t, at(step.now), p.configURL(tenant))
		if got := p.take(); len(got) != step.requests {
			t.Fatalf("at %v: requests %q, want %d", step.now.Sub(start), got, step.requests)
		}
	}
}

func TestDefaultMaxAgeIsADay(t *testing.T) {
	p := newIDP(t)
	dir := t.TempDir()
	start := time.Now()
	get(t, p.process(MetadataOptions{Dir: dir, Now: func() time.Time { return start }}), p.configURL(tenant))
	get(t, p.process(MetadataOptions{Dir: dir, Now: func() time.Time { return start.Add(23 * time.Hour) }}), p.configURL(tenant))
	get(t, p.process(MetadataOptions{Dir: dir, Now: func() time.Time { return start.Add(48 * time.Hour) }}), p.configURL(tenant))
	if got := p.take(); len(got) != 2 {
		t.Fatalf("requests %q, want 2 (stored, then refetched after a day)", got)
	}
}

func TestDamagedCopyIsAMiss(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":      "\x00not json",
		"truncated":    `{"url":"`,
		"empty":        "",
		"no body":      `{"url":%q,"fetched_at":"2026-03-01T12:00:00Z"}`,
		"null body":    `{"url":%q,"fetched_at":"2026-03-01T12:00:00Z","body":null}`,
		"array body":   `{"url":%q,"fetched_at":"2026-03-01T12:00:00Z","body":[1]}`,
		"no time":      `{"url":%q,"body":{"issuer":"x"}}`,
		"another url":  `{"url":"https://elsewhere.example/t/v2.0/.well-known/openid-configuration","fetched_at":"2026-03-01T12:00:00Z","body":{"issuer":"x"}}`,
		"a directory":  "",
		"unreadable":   "",
		"wrong fields": `{"url":%q,"fetched_at":"yesterday","body":{}}`,
	} {
		t.Run(name, func(t *testing.T) {
			p := newIDP(t)
			dir := t.TempDir()
			url := p.configURL(tenant)
			path := filepath.Join(dir, cacheKey(url)+".json")
			switch name {
			case "a directory":
				os.Mkdir(path, 0o700)
			case "unreadable":
				os.WriteFile(path, []byte("{}"), 0o000)
			default:
				if strings.Contains(content, "%q") {
					content = fmt.Sprintf(content, url)
				}
				os.WriteFile(path, []byte(content), 0o600)
			}
			now := func() time.Time { return time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC) }
			code, body := get(t, p.process(MetadataOptions{Dir: dir, Now: now}), url)
			if code != 200 || !strings.Contains(body, "token_endpoint") {
				t.Fatalf("%d %s", code, body)
			}
			if got := p.take(); len(got) != 1 {
				t.Fatalf("requests %q, want the document fetched", got)
			}
			if name == "a directory" || (name == "unreadable" && os.Geteuid() == 0) {
				return // nothing can be written over a directory; root reads anything
			}
			// The refetched copy replaced the damaged one.
			get(t, p.process(MetadataOptions{Dir: dir, Now: now}), url)
			if got := p.take(); len(got) != 0 {
				t.Fatalf("after refetch: requests %q, want none", got)
			}
		})
	}
}

func TestOnlyGoodDocumentsAreStored(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
	}{
		{"server error", 500, `{"error":"server_error"}`},
		{"not found", 404, `{"error":"invalid_tenant"}`},
		{"throttled", 429, `{"error":"throttled"}`},
		{"not json", 200, `<html>captive portal</html>`},
		{"json but not an object", 200, `["issuer"]`},
		{"too large", 200, `{"pad":"` + strings.Repeat("x", maxMetadataBody) + `"}`},
		{"token endpoint elsewhere", 200, `{"token_endpoint":"https://attacker.invalid/token"}`},
		{"token endpoint over http", 200, `{"token_endpoint":"http://127.0.0.1/token"}`},
		{"no token endpoint", 200, `{"issuer":"https://127.0.0.1/"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newIDP(t)
			p.metaStatus, p.metaBody = tc.status, tc.body
			dir := t.TempDir()
			for range 2 {
				code, body := get(t, p.process(MetadataOptions{Dir: dir}), p.configURL(tenant))
				if code != tc.status || body != tc.body {
					t.Fatalf("answer %d (%d bytes) was not passed on intact", code, len(body))
				}
			}
			if got := p.take(); len(got) != 2 {
				t.Fatalf("requests %q, want both sent", got)
			}
			if files := cacheFiles(t, dir); len(files) != 0 {
				t.Fatalf("stored %q", files)
			}
		})
	}
}

func TestOtherRequestsPassThrough(t *testing.T) {
	p := newIDP(t)
	dir := t.TempDir()
	c := p.process(MetadataOptions{Dir: dir})
	for range 2 {
		resp, err := c.Post(p.srv.URL+"/"+tenant+"/oauth2/v2.0/token", "application/x-www-form-urlencoded", strings.NewReader("grant_type=client_credentials"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "access_token") {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		// A POST to the document's own path is not a document fetch either.
		resp, err = c.Post(p.configURL(tenant), "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		get(t, c, p.srv.URL+"/"+tenant+"/v2.0/.well-known/keys")
	}
	if got := p.take(); len(got) != 6 {
		t.Fatalf("requests %q, want all 6 sent", got)
	}
	if files := cacheFiles(t, dir); len(files) != 0 {
		t.Fatalf("stored %q", files)
	}
}

func TestFolderOthersCanWriteIsNotUsed(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Log("running as root: ownership is not exercised, only the mode")
	}
	p := newIDP(t)
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// A planted document naming another token endpoint must never be served.
	url := p.configURL(tenant)
	planted, _ := json.Marshal(entry{URL: url, FetchedAt: time.Now(), Body: []byte(`{"token_endpoint":"https://attacker.example/token"}`)})
	if err := os.WriteFile(filepath.Join(dir, cacheKey(url)+".json"), planted, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	var logs []string
	logf := func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }
	for range 2 {
		_, body := get(t, p.process(MetadataOptions{Dir: dir, Logf: logf}), url)
		if strings.Contains(body, "attacker") {
			t.Fatal("served a document from a folder others can write to")
		}
	}
	if got := p.take(); len(got) != 2 {
		t.Fatalf("requests %q, want both sent", got)
	}
	if len(logs) == 0 || !strings.Contains(logs[0], "writable by group or others") {
		t.Errorf("logs %q", logs)
	}
}

func TestNoDirMeansNoCache(t *testing.T) {
	p := newIDP(t)
	for range 2 {
		get(t, p.process(MetadataOptions{}), p.configURL(tenant))
	}
	if got := p.take(); len(got) != 2 {
		t.Fatalf("requests %q, want both sent", got)
	}
}

// TestMSALRefreshIsOneRequest runs MSAL Go through the whole chain: the first process
// fetches the openid-configuration and retries a 503 from the token endpoint; a later
// process makes exactly one request, the token POST.
func TestMSALRefreshIsOneRequest(t *testing.T) {
	p := newIDP(t)
	p.tokenCodes = []int{503}
	dir := t.TempDir()
	c := &clock{}
	acquire := func() {
		t.Helper()
		client := newClient(p.srv.Client().Transport, dir, c.options(), c.logf)
		cred, err := confidential.NewCredFromSecret("not-a-secret")
		if err != nil {
			t.Fatal(err)
		}
		app, err := confidential.New(p.srv.URL+"/"+tenant, "00000000-0000-0000-0000-000000000001", cred,
			confidential.WithHTTPClient(client), confidential.WithInstanceDiscovery(false))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		res, err := app.AcquireTokenByCredential(ctx, []string{"https://api.partnercenter.microsoft.com/.default"})
		if err != nil {
			t.Fatal(err)
		}
		if res.AccessToken != "at-not-a-secret" {
			t.Fatalf("token %q", res.AccessToken)
		}
	}

	acquire()
	want := []string{
		"GET /" + tenant + openIDConfigSuffix,
		"POST /" + tenant + "/oauth2/v2.0/token", // 503
		"POST /" + tenant + "/oauth2/v2.0/token",
	}
	if got := p.take(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("first process: %q, want %q", got, want)
	}
	acquire()
	if got := p.take(); fmt.Sprint(got) != fmt.Sprint(want[2:]) {
		t.Fatalf("later process: %q, want only the token POST", got)
	}
}

// TestNewClientHonoursSSLCertFile runs a child test process, since Go reads
// SSL_CERT_FILE once per process: trusting the server only through that variable,
// NewClient's client must reach it and keep its document on disk.
func TestNewClientHonoursSSLCertFile(t *testing.T) {
	if url := os.Getenv("IDPHTTP_CHILD_URL"); url != "" {
		c := NewClient(os.Getenv("IDPHTTP_CHILD_DIR"), RetryOptions{}, nil)
		resp, err := c.Get(url)
		if err != nil {
			fmt.Printf("child: transient=%v: %v\n", IsTransient(err), err)
			return
		}
		resp.Body.Close()
		fmt.Printf("child: status %d\n", resp.StatusCode)
		return
	}
	p := newIDP(t)
	certFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw})
	if err := os.WriteFile(certFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	emptyDir := t.TempDir()
	dir := t.TempDir()
	child := func(certFile, dir string) string {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestNewClientHonoursSSLCertFile$", "-test.count=1")
		cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+certFile, "SSL_CERT_DIR="+emptyDir,
			"IDPHTTP_CHILD_URL="+p.configURL(tenant), "IDPHTTP_CHILD_DIR="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := child(certFile, dir); !strings.Contains(out, "child: status 200") {
		t.Fatalf("trusted through SSL_CERT_FILE: %s", out)
	}
	if out := child(filepath.Join(emptyDir, "none.pem"), t.TempDir()); !strings.Contains(out, "child: transient=false") {
		t.Fatalf("without trust: %s", out)
	}
	if got := p.take(); len(got) != 1 {
		t.Fatalf("requests %q: want one fetch, the untrusting child stopped at the handshake", got)
	}
	if files := cacheFiles(t, dir); len(files) != 1 {
		t.Fatalf("files %q, want the document kept", files)
	}
}

func BenchmarkMetadataHit(b *testing.B) {
	p := newIDP(b)
	dir := b.TempDir()
	c := p.process(MetadataOptions{Dir: dir})
	url := p.configURL(tenant)
	get(b, c, url)
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Transport.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
	if got := p.take(); len(got) != 1 {
		b.Fatalf("requests %d, want only the first", len(got))
	}
}

func FuzzDecodeEntry(f *testing.F) {
	const url = "https://login.example/t/v2.0/.well-known/openid-configuration"
	good, _ := json.Marshal(entry{URL: url, FetchedAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Body: []byte(`{"issuer":"https://login.example/t/v2.0"}`)})
	for _, s := range []string{string(good), "", "{}", "null", `{"url":"` + url + `","fetched_at":"2026-03-01T12:00:00Z","body":[]}`, "\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decodeEntry(data, url)
		if err != nil {
			return
		}
		if e.URL != url || e.FetchedAt.IsZero() || !isJSONObject(e.Body) {
			t.Fatalf("accepted %q as %+v", data, e)
		}
		// What is accepted survives a round trip.
		again, _ := json.Marshal(e)
		if _, err := decodeEntry(again, url); err != nil {
			t.Fatalf("re-encoded entry rejected: %v", err)
		}
	})
}
