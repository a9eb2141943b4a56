package consentflow

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/harness"
	"github.com/pctoken/pctoken-helper/securestore"
)

// checkAuthorize checks the last authorize request: PKCE S256, a state, offline
// access, and the redirect URI on wantPort.
func checkAuthorize(t *testing.T, e *harness.Env, clientID string, wantPort int) entrasim.AuthorizeRecord {
	t.Helper()
	rec, ok := e.Sim.LastAuthorize()
	if !ok {
		t.Fatal("the simulator saw no authorize request")
	}
	if rec.ClientID != clientID || rec.Method != "S256" || rec.CodeChallenge == "" || len(rec.State) < 16 {
		t.Fatalf("authorize request: %+v", rec)
	}
	if !slices.Contains(rec.Scopes, "offline_access") {
		t.Fatalf("authorize scopes %v lack offline_access", rec.Scopes)
	}
	if want := "http://localhost:" + strconv.Itoa(wantPort); rec.RedirectURI != want {
		t.Fatalf("redirect URI %q, want %q", rec.RedirectURI, want)
	}
	return rec
}

func TestAuthCodePublicClient(t *testing.T) {
	t.Parallel()
	e, log := newEnv(t)
	port := portBlock(t)
	res := e.Run("consent", "--port-range", portRange(port, port+blockSize-1), "--timeout", "30s")
	consentOK(t, res, "default")
	rec := checkAuthorize(t, e, entrasim.PublicClientID, port)
	// The URL went to stderr, and to the browser (which reached the listener once).
	if !strings.Contains(res.Stderr, "/oauth2/v2.0/authorize?") || !strings.Contains(res.Stderr, url.QueryEscape(rec.State)) {
		t.Fatalf("the authorize URL is not on stderr:\n%s", res.Stderr)
	}
	if got := harness.BrowserLog(log); !slices.Equal(got, []string{"redirect=200"}) {
		t.Fatalf("browser log %v", got)
	}
	if st := e.Sim.Stats(); st.Grants["authorization_code"] != 1 {
		t.Fatalf("grants %v", st.Grants)
	}
	tok := getToken(t, e, "--scope", "graph", "--tenant", entrasim.CustomerTenantID)
	if tok.TenantID != entrasim.CustomerTenantID {
		t.Fatalf("get after consent: %+v", tok)
	}
}

// A confidential client consents with its secret on stdin; the secret goes to the
// secure store and a later get uses it with no PCTOKEN_CLIENT_SECRET. The secret is
// never shown: not on stdout or stderr (even with -v), not in the profile, not in
// any file outside the encrypted store.
func TestAuthCodeConfidentialSecretStdin(t *testing.T) {
	t.Parallel()
	e, _ := newEnv(t)
	delete(e.Vars, "PCTOKEN_CLIENT_ID")
	port := portBlock(t)
	res := e.RunStdin(entrasim.ClientSecret+"\n", "consent", "-v", "--profile", "csp", "--client-id", entrasim.ConfidentialClientID,
		"--client-secret-stdin", "--port-range", portRange(port, port+blockSize-1), "--timeout", "30s")
	consentOK(t, res, "csp")
	checkAuthorize(t, e, entrasim.ConfidentialClientID, port)
	if strings.Contains(res.Stdout+res.Stderr, entrasim.ClientSecret) {
		t.Fatal("consent showed the client secret")
	}
	raw, p := readProfile(t, e, "csp")
	if strings.Contains(raw, entrasim.ClientSecret) || p["stored_secret"] != true || p["client_id"] != entrasim.ConfidentialClientID {
		t.Fatalf("profile: %s", raw)
	}
	st, _, err := securestore.Open(securestore.Config{Backend: "file", FileDir: e.Vars["PCTOKEN_STORE_DIR"], Passphrase: harness.Passphrase})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := st.Get("client-secret:csp"); err != nil || v != entrasim.ClientSecret {
		t.Fatalf("the secure store does not hold the secret: %v", err)
	}
	for _, f := range filesOutside(t, e.Dir, e.Vars["PCTOKEN_STORE_DIR"]) {
		if b, _ := os.ReadFile(f); strings.Contains(string(b), entrasim.ClientSecret) {
			t.Fatalf("%s holds the client secret", f)
		}
	}

	if _, ok := e.Vars["PCTOKEN_CLIENT_SECRET"]; ok {
		t.Fatal("the environment has a client secret")
	}
	before := e.Sim.Stats().Errors
	getToken(t, e, "--profile", "csp", "--scope", "graph")
	getToken(t, e, "--profile", "csp", "--scope", "arm", "--tenant", entrasim.CustomerTenantID)
	if after := e.Sim.Stats().Errors; len(after) != len(before) {
		t.Fatalf("the simulator refused requests: %v", after)
	}
	res = e.Run("status", "-o", "json", "-v")
	if strings.Contains(res.Stdout+res.Stderr, entrasim.ClientSecret) {
		t.Fatal("status showed the client secret")
	}

	// Consent again with nothing on stdin: the stored secret is used and kept.
	res = e.Run("consent", "--profile", "csp", "--port-range", portRange(port, port+blockSize-1), "--timeout", "30s")
	consentOK(t, res, "csp")
	if _, p := readProfile(t, e, "csp"); p["stored_secret"] != true {
		t.Fatalf("a second consent forgot the stored secret: %v", p)
	}
	getToken(t, e, "--profile", "csp", "--scope", "graph")
}

// filesOutside lists the files below root, except those below skip.
func filesOutside(t *testing.T, root, skip string) []string {
	t.Helper()
	var out []string
	filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		if info.IsDir() && path == skip {
			return filepath.SkipDir
		}
		if info.Mode().IsRegular() {
			out = append(out, path)
		}
		return nil
	})
	if len(out) == 0 {
		t.Fatal("no files written")
	}
	return out
}

func TestAuthCodeConfidentialCertificate(t *testing.T) {
	t.Parallel()
	e, _ := newEnv(t)
	delete(e.Vars, "PCTOKEN_CLIENT_ID")
	port := portBlock(t)
	res := e.Run("consent", "--profile", "cert", "--client-id", entrasim.CertClientID, "--client-certificate", e.Sim.CertClientPEMFile(),
		"--port-range", portRange(port, port+blockSize-1), "--timeout", "30s")
	consentOK(t, res, "cert")
	checkAuthorize(t, e, entrasim.CertClientID, port)
	raw, p := readProfile(t, e, "cert")
	if p["client_certificate"] != e.Sim.CertClientPEMFile() || strings.Contains(raw, "PRIVATE KEY") {
		t.Fatalf("profile: %s", raw)
	}
	// A later get signs its assertion with the certificate the profile names.
	tok := getToken(t, e, "--profile", "cert", "--scope", "graph")
	if tok.Profile != "cert" || tok.TenantID != entrasim.HomeTenantID {
		t.Fatalf("get: %+v", tok)
	}
	// A certificate not registered on the app is a configuration error (exit 5).
	other := filepath.Join(e.Dir, "other.pem")
	if err := os.WriteFile(other, selfSignedPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	res = e.Run("get", "--profile", "cert", "--force-refresh", "--client-certificate", other)
	wantExit(t, res, 5, "get with a certificate the app does not know")
	if !strings.Contains(res.Stdout, `"aadsts":"AADSTS700027"`) || !strings.Contains(res.Stderr, "AADSTS700027") {
		t.Fatalf("unknown certificate:\nstdout: %s\nstderr: %s", res.Stdout, res.Stderr)
	}
}

// selfSignedPEM is a certificate and its private key that no app registered.
func selfSignedPEM(t *testing.T) []byte {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048) // MSAL takes RSA keys only
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "not registered"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
}

func TestDeviceCode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, clientID string }{
		{"public", entrasim.PublicClientID},
		{"exchange", entrasim.ExchangeClientID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := harness.New(t)
			e.Vars["PCTOKEN_CLIENT_ID"] = tc.clientID
			res := e.Consent("--profile", tc.name)
			consentOK(t, res, tc.name)
			rec, ok := e.Sim.LastDeviceCode()
			if !ok || rec.ClientID != tc.clientID {
				t.Fatalf("device code record: %+v", rec)
			}
			// The identity provider's message, with the code and URL, is on stderr.
			if !strings.Contains(res.Stderr, rec.Message) || !strings.Contains(res.Stderr, rec.UserCode) {
				t.Fatalf("stderr lacks the device code message %q:\n%s", rec.Message, res.Stderr)
			}
			if !slices.Contains(rec.Scopes, "offline_access") {
				t.Fatalf("device code scopes %v lack offline_access", rec.Scopes)
			}
			if st := e.Sim.Stats(); st.Grants["device_code"] < 1 || st.Requests["authorize"] != 0 {
				t.Fatalf("stats %+v", st)
			}
			tok := getToken(t, e, "--profile", tc.name, "--scope", "exchange")
			if tok.Profile != tc.name {
				t.Fatalf("get: %+v", tok)
			}
		})
	}
	t.Run("abandoned", func(t *testing.T) {
		t.Parallel()
		e := harness.New(t)
		e.Sim.ApproveDeviceCodes(false) // nobody enters the code
		start := time.Now()
		res := e.Run("consent", "--flow", "device-code", "--timeout", "2s")
		took := time.Since(start)
		wantExit(t, res, 3, "abandoned device code")
		if took > 12*time.Second || !strings.Contains(res.Stderr, "within the timeout") || res.Stdout != "" {
			t.Fatalf("abandoned device code after %s: stdout %q\nstderr:\n%s", took, res.Stdout, res.Stderr)
		}
	})
	t.Run("confidential refused", func(t *testing.T) {
		t.Parallel()
		e := harness.New(t)
		e.Vars["PCTOKEN_CLIENT_ID"] = entrasim.ConfidentialClientID
		e.Vars["PCTOKEN_CLIENT_SECRET"] = entrasim.ClientSecret
		res := e.Run("consent", "--flow", "device-code")
		wantExit(t, res, 2, "device code for a confidential client")
		if !strings.Contains(res.Stderr, "auth-code") {
			t.Fatalf("the error does not point to --flow auth-code:\n%s", res.Stderr)
		}
	})
}

// With the first port of --port-range taken, the next one is used.
func TestPortRangeSkipsTakenPort(t *testing.T) {
	t.Parallel()
	e, _ := newEnv(t)
	port := portBlock(t)
	takePort(t, port)
	res := e.Run("consent", "--port-range", portRange(port, port+blockSize-1), "--timeout", "30s")
	consentOK(t, res, "default")
	checkAuthorize(t, e, entrasim.PublicClientID, port+1)
	getToken(t, e, "--scope", "graph")
}

// With every port of the range taken, consent fails at once with a clear message
// (exit 2: the --port-range given cannot be used) and opens no browser.
func TestPortRangeAllTaken(t *testing.T) {
	t.Parallel()
	e, log := newEnv(t)
	port := portBlock(t)
	for p := port; p < port+3; p++ {
		takePort(t, p)
	}
	start := time.Now()
	res := e.Run("consent", "--port-range", portRange(port, port+2), "--timeout", "30s")
	wantExit(t, res, 2, "consent with the whole port range taken")
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("failing took %s", took)
	}
	if !strings.Contains(res.Stderr, "no free loopback port in "+portRange(port, port+2)) || !strings.Contains(res.Stderr, "--port-range") {
		t.Fatalf("stderr:\n%s", res.Stderr)
	}
	if res.Stdout != "" || harness.BrowserLog(log) != nil {
		t.Fatalf("stdout %q, browser %v", res.Stdout, harness.BrowserLog(log))
	}
	if _, ok := e.Sim.LastAuthorize(); ok {
		t.Fatal("the browser was sent to authorize")
	}
}

// A stray request to the listener before the redirect (a favicon) is answered and
// ignored.
func TestStrayRequestBeforeRedirect(t *testing.T) {
	t.Parallel()
	e, log := newEnv(t)
	port := portBlock(t)
	e.Vars[harness.BrowserFirstVar] = "http://127.0.0.1:" + strconv.Itoa(port) + "/favicon.ico"
	res := e.Run("consent", "--port-range", strconv.Itoa(port), "--timeout", "30s")
	consentOK(t, res, "default")
	if got := harness.BrowserLog(log); !slices.Equal(got, []string{"first=404", "redirect=200"}) {
		t.Fatalf("browser log %v", got)
	}
	getToken(t, e, "--scope", "graph")
}

// An authorization response with the wrong state is refused and does not end the
// flow: the real one that follows completes it.
func TestWrongStateRefused(t *testing.T) {
	t.Parallel()
	e, log := newEnv(t)
	e.Vars[harness.BrowserWrongStateVar] = "first"
	port := portBlock(t)
	res := e.Run("consent", "--port-range", portRange(port, port+blockSize-1), "--timeout", "30s")
	consentOK(t, res, "default")
	if got := harness.BrowserLog(log); !slices.Equal(got, []string{"wrong-state=400", "redirect=200"}) {
		t.Fatalf("browser log %v", got)
	}
	if st := e.Sim.Stats(); st.Grants["authorization_code"] != 1 {
		t.Fatalf("codes redeemed: %v", st.Grants)
	}
	getToken(t, e, "--scope", "graph")
}

// When only a response with the wrong state arrives, its code is never redeemed and
// the step ends at the timeout.
func TestWrongStateOnlyTimesOut(t *testing.T) {
	t.Parallel()
	e, log := newEnv(t)
	e.Vars[harness.BrowserWrongStateVar] = "only"
	port := portBlock(t)
	res := e.Run("consent", "--port-range", portRange(port, port+blockSize-1), "--timeout", "3s")
	if res.Code == 0 {
		t.Fatal("a response with the wrong state completed consent")
	}
	if got := harness.BrowserLog(log); !slices.Equal(got, []string{"wrong-state=400"}) {
		t.Fatalf("browser log %v", got)
	}
	if st := e.Sim.Stats(); st.Grants["authorization_code"] != 0 {
		t.Fatalf("a code with the wrong state was redeemed: %v", st.Grants)
	}
	if _, err := os.Stat(filepath.Join(e.Vars["XDG_CONFIG_HOME"], "pctoken-helper", "profiles", "default.json")); err == nil {
		t.Fatal("a profile was saved")
	}
}

// A browser that never comes back: the step ends at --timeout with a clear message.
func TestAbandonedFlowTimesOut(t *testing.T) {
	t.Parallel()
	e := harness.New(t)
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true(1)")
	}
	e.Vars["BROWSER"] = truePath
	port := portBlock(t)
	start := time.Now()
	res := e.Run("consent", "--port-range", portRange(port, port+blockSize-1), "--timeout", "2s")
	took := time.Since(start)
	if res.Code == 0 || res.Code == 1 {
		t.Fatalf("abandoned consent: exit %d\n%s", res.Code, res.Stderr)
	}
	if took > 12*time.Second {
		t.Fatalf("abandoned consent with --timeout 2s took %s", took)
	}
	if !strings.Contains(res.Stderr, "not completed within 2s") || res.Stdout != "" {
		t.Fatalf("abandoned consent: stdout %q\nstderr:\n%s", res.Stdout, res.Stderr)
	}
	// The listener is gone with the process.
	if !portsFree(port, 1) {
		t.Fatalf("port %d still taken after the helper exited", port)
	}
	t.Logf("abandoned consent, --timeout 2s: exit %d after %s", res.Code, took.Round(time.Millisecond))
}

// --no-browser prints the URL on stderr and starts no browser; the user opens it.
func TestNoBrowser(t *testing.T) {
	t.Parallel()
	e, log := newEnv(t)
	port := portBlock(t)
	r := start(t, e, "consent", "--no-browser", "--port-range", portRange(port, port+blockSize-1), "--timeout", "30s")
	line := r.waitLine(t, 20*time.Second, func(l string) bool {
		return strings.HasPrefix(strings.TrimSpace(l), e.Sim.URL()+"/")
	})
	authURL := strings.TrimSpace(line)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	status, body, err := e.Sim.Browse(ctx, authURL)
	if err != nil || status != 200 {
		t.Fatalf("browse %s: %d %v\n%s", authURL, status, err, body)
	}
	res := r.wait(t)
	consentOK(t, res, "default")
	if harness.BrowserLog(log) != nil {
		t.Fatalf("--no-browser ran $BROWSER: %v", harness.BrowserLog(log))
	}
	checkAuthorize(t, e, entrasim.PublicClientID, port)
	getToken(t, e, "--scope", "graph")
}

// Consent again on an existing profile keeps the settings it does not change.
func TestConsentAgainKeepsSettings(t *testing.T) {
	t.Parallel()
	e, _ := newEnv(t)
	storeDir := e.Vars["PCTOKEN_STORE_DIR"]
	for _, k := range []string{"PCTOKEN_CLIENT_ID", "PCTOKEN_STORE", "PCTOKEN_STORE_DIR"} {
		delete(e.Vars, k)
	}
	port := portBlock(t)
	ports := portRange(port, port+blockSize-1)
	res := e.Run("consent", "--profile", "k", "--client-id", entrasim.PublicClientID, "--store", "file", "--store-dir", storeDir,
		"--scopes", "graph", "--port-range", ports, "--timeout", "30s")
	consentOK(t, res, "k")
	_, first := readProfile(t, e, "k")
	rt1 := storeGet(t, storeDir, "refresh-token:k")

	// Only the profile name this time: client id, store and scopes come from it.
	res = e.Run("consent", "--profile", "k", "--port-range", ports, "--timeout", "30s")
	consentOK(t, res, "k")
	_, second := readProfile(t, e, "k")
	for _, k := range []string{"client_id", "store", "store_dir", "scopes", "home_tenant", "account"} {
		if !jsonEqual(first[k], second[k]) {
			t.Errorf("%s changed from %v to %v", k, first[k], second[k])
		}
	}
	if rec, _ := e.Sim.LastAuthorize(); !slices.Contains(rec.Scopes, entrasim.GraphScope) {
		t.Errorf("the second consent asked for %v, not the saved scopes", rec.Scopes)
	}
	if rt2 := storeGet(t, storeDir, "refresh-token:k"); rt2 == rt1 || !e.Sim.RefreshTokenValid(rt2) {
		t.Fatal("the second consent did not store its new refresh token")
	}
	tok := getToken(t, e, "--profile", "k")
	if tok.Profile != "k" {
		t.Fatalf("get: %+v", tok)
	}
}

func storeGet(t *testing.T, dir, key string) string {
	t.Helper()
	st, _, err := securestore.Open(securestore.Config{Backend: "file", FileDir: dir, Passphrase: harness.Passphrase})
	if err != nil {
		t.Fatal(err)
	}
	v, err := st.Get(key)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return v
}

func jsonEqual(a, b any) bool {
	return strings.EqualFold(strings.TrimSpace(toString(a)), strings.TrimSpace(toString(b)))
}

func toString(v any) string {
	switch v := v.(type) {
	case nil:
		return "<nil>"
	case string:
		return v
	case []any:
		var parts []string
		for _, x := range v {
			parts = append(parts, toString(x))
		}
		return "[" + strings.Join(parts, " ") + "]"
	case map[string]any:
		var parts []string
		for k, x := range v {
			parts = append(parts, k+"="+toString(x))
		}
		slices.Sort(parts)
		return "{" + strings.Join(parts, " ") + "}"
	}
	return "?"
}

// A sign-in without MFA succeeds with a warning: Partner Center will refuse its tokens.
func TestNoMFAWarning(t *testing.T) {
	t.Parallel()
	e, _ := newEnv(t)
	e.Sim.SetAMR([]string{"pwd"})
	port := portBlock(t)
	res := e.Run("consent", "--port-range", portRange(port, port+blockSize-1), "--timeout", "30s")
	consentOK(t, res, "default")
	if !strings.Contains(res.Stderr, "warning: this sign-in did not use multi-factor authentication") ||
		!strings.Contains(res.Stderr, "pctoken-helper consent --profile default") {
		t.Fatalf("no MFA warning:\n%s", res.Stderr)
	}
	// With MFA, no warning.
	e.Sim.SetAMR([]string{"pwd", "mfa"})
	res = e.Run("consent", "--port-range", portRange(port, port+blockSize-1), "--timeout", "30s")
	consentOK(t, res, "default")
	if strings.Contains(res.Stderr, "multi-factor") {
		t.Fatalf("MFA warning after an MFA sign-in:\n%s", res.Stderr)
	}
}

// An error the identity provider sends to the redirect URI ends consent at once, and
// is classified like any other: an unknown application is a configuration error
// (exit 5, AADSTS700016) whose remedy is to check the client id, not to consent again.
func TestAuthorizeErrorAtRedirect(t *testing.T) {
	t.Parallel()
	e, log := newEnv(t)
	const unknown = "0f1e2d3c-0000-4000-8000-0000000bad01"
	port := portBlock(t)
	start := time.Now()
	res := e.Run("consent", "--client-id", unknown, "--port-range", portRange(port, port+blockSize-1), "--timeout", "30s")
	took := time.Since(start)
	wantExit(t, res, 5, "consent for an unknown application")
	if took > 15*time.Second {
		t.Fatalf("consent waited %s for a flow the identity provider had ended", took)
	}
	if got := harness.BrowserLog(log); !slices.Equal(got, []string{"redirect=200"}) {
		t.Fatalf("browser log %v", got)
	}
	if !strings.Contains(res.Stderr, "AADSTS700016") || !strings.Contains(res.Stderr, "hint: check --client-id") {
		t.Fatalf("stderr:\n%s", res.Stderr)
	}
	// Only the first line of Entra's description: no trace ids in the message.
	if strings.Contains(res.Stderr, "Trace ID") || res.Stdout != "" {
		t.Fatalf("stdout %q\nstderr:\n%s", res.Stdout, res.Stderr)
	}
}

// A wrong secret on stdin fails the code redemption: exit 5, the secret is not shown,
// and nothing is saved.
func TestAuthCodeWrongSecretSavesNothing(t *testing.T) {
	t.Parallel()
	e, _ := newEnv(t)
	const wrong = "wrong-secret-typed-at-consent"
	port := portBlock(t)
	res := e.RunStdin(wrong+"\n", "consent", "--client-id", entrasim.ConfidentialClientID, "--client-secret-stdin",
		"--port-range", portRange(port, port+blockSize-1), "--timeout", "30s")
	wantExit(t, res, 5, "consent with a wrong secret")
	if !strings.Contains(res.Stderr, "AADSTS7000215") || strings.Contains(res.Stdout+res.Stderr, wrong) {
		t.Fatalf("stdout %q\nstderr:\n%s", res.Stdout, res.Stderr)
	}
	for _, dir := range []string{e.Vars["PCTOKEN_STORE_DIR"], filepath.Join(e.Vars["XDG_CONFIG_HOME"], "pctoken-helper", "profiles")} {
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("a failed consent left %d entries in %s", len(entries), dir)
		}
	}
}
