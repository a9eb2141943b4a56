package exposure

import (
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/harness"
)

// TestEchoedSecretsAreNotShown: an identity provider (or a WAF in front of it) whose
// errors quote the request, in every shape (a JSON description, the error field, an
// HTML page, a 200 that is not JSON), for every command that redeems a refresh
// token, verbose: no refresh token, client secret (stored, or given by variable) or
// passphrase appears on stdout (get -o json, renew, --request answers), on stderr,
// or in any file outside the encrypted store. The identity provider did get the
// secrets, so the echo held them.
func TestEchoedSecretsAreNotShown(t *testing.T) {
	t.Parallel()
	e, idp := newEnv(t)
	e.UseTestBinaryAsBrowser()
	e.Consent()
	delete(e.Vars, "PCTOKEN_CLIENT_ID")
	conf := []string{"--profile", "conf", "--client-id", entrasim.ConfidentialClientID}
	if res := run(t, e, entrasim.ClientSecret+"\n", nil, append([]string{"consent", "--client-secret-stdin", "--timeout", "30s"}, conf...)...); res.Code != 0 {
		t.Fatalf("confidential consent: exit %d\n%s", res.Code, res.Stderr)
	}
	var s harness.Secrets
	s.Add("the client secret", entrasim.ClientSecret)
	s.Add("the file store passphrase", harness.Passphrase)
	rt := storedRefreshToken(t, e, "default")
	s.Add("the refresh token of default", rt)
	s.Add("the refresh token of conf", storedRefreshToken(t, e, "conf"))

	e.Vars["PCTOKEN_VERBOSE"] = "1"
	execInfo := map[string]string{"KUBERNETES_EXEC_INFO": `{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}`}
	type step struct {
		name  string
		stdin string
		env   map[string]string
		args  []string
	}
	steps := []step{
		{name: "get json", args: []string{"get", "--force-refresh"}},
		{name: "get token", args: []string{"get", "-o", "token", "--force-refresh"}},
		{name: "get confidential (stored secret)", args: append([]string{"get", "--force-refresh"}, conf...)},
		{name: "get confidential (secret by variable)", args: append([]string{"get", "--force-refresh", "-o", "json"}, conf...),
			env: map[string]string{"PCTOKEN_CLIENT_SECRET": entrasim.ClientSecret}},
		{name: "get batch", stdin: `{"id":1,"force_refresh":true}` + "\n" + `{"id":2,"profile":"conf","force_refresh":true}` + "\n",
			args: []string{"get", "--request", "-"}},
		{name: "renew", args: []string{"renew", "--all"}},
		{name: "exec-credential", args: []string{"exec-credential", "--force-refresh", "--scope", "aks"}, env: execInfo},
		{name: "git-credential", stdin: "protocol=https\nhost=dev.azure.com\n\n", args: []string{"git-credential", "--force-refresh", "--scope", "azure-devops", "get"}},
		{name: "CI mode", args: []string{"get", "--force-refresh", "--profile", "ci", "--client-id", entrasim.PublicClientID, "--tenant", entrasim.HomeTenantID},
			env: map[string]string{"PCTOKEN_REFRESH_TOKEN": rt}},
		{name: "import", stdin: rt + "\n", args: []string{"import", "--profile", "imported", "--client-id", entrasim.PublicClientID}},
		{name: "consent, device code", args: []string{"consent", "--flow", "device-code", "--profile", "dc", "--client-id", entrasim.PublicClientID, "--timeout", "20s"}},
		{name: "consent, browser, secret on stdin", stdin: entrasim.ClientSecret + "\n",
			args: []string{"consent", "--client-secret-stdin", "--profile", "conf2", "--client-id", entrasim.ConfidentialClientID, "--timeout", "20s"}},
	}
	modes := []struct {
		name string
		mode harness.EchoMode
	}{
		{"JSON description", harness.EchoJSON},
		{"error field", harness.EchoErrorField},
		{"HTML page", harness.EchoHTML},
		{"malformed 200", harness.EchoMalformed},
	}
	echoSeen := false
	type output struct{ what, stdout, stderr string }
	var outputs []output
	e.Sim.ApproveDeviceCodes(true)
	for _, m := range modes {
		idp.SetMode(m.mode)
		for _, st := range steps {
			res := run(t, e, st.stdin, st.env, st.args...)
			what := m.name + ", " + st.name
			if res.Code == 0 {
				t.Fatalf("%s: exit 0 against an identity provider that only fails\nstdout: %s", what, short(res.Stdout))
			}
			outputs = append(outputs, output{what, res.Stdout, res.Stderr})
			echoSeen = echoSeen || strings.Contains(res.Stdout+res.Stderr, "request was")
		}
	}
	// The authorization codes, PKCE verifiers and device codes the helper sent are
	// secrets too: read them from what the identity provider got.
	for _, body := range idp.Bodies() {
		form, err := url.ParseQuery(body)
		if err != nil {
			continue
		}
		for _, k := range []string{"code", "code_verifier", "device_code", "client_assertion"} {
			if v := form.Get(k); len(v) >= 16 {
				s.Add("the "+k+" sent", v)
			}
		}
	}
	for _, o := range outputs {
		if leak := s.Find(o.stdout, false); leak != "" {
			t.Errorf("%s: stdout holds %s\n%s", o.what, leak, short(o.stdout))
		}
		if leak := s.Find(o.stderr, false); leak != "" {
			t.Errorf("%s: stderr holds %s\n%s", o.what, leak, short(o.stderr))
		}
	}
	// The echo reached the output (scrubbed), and what it echoed held the secrets.
	if !echoSeen {
		t.Error("no output showed the identity provider's echo: the test proves nothing")
	}
	for _, want := range []string{"refresh_token=" + rt[:20], "client_secret=" + entrasim.ClientSecret[:8], "code_verifier=", "&code=", "device_code="} {
		if !idp.Sent(want) {
			t.Errorf("the identity provider never got %q: nothing secret was echoed", want[:min(len(want), 20)])
		}
	}
	// No file the helper keeps holds a secret in clear (the store is encrypted).
	filepath.WalkDir(e.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() && path == filepath.Join(e.Dir, "sim") {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err == nil {
			if leak := s.Find(string(b), true); leak != "" {
				t.Errorf("%s holds %s", path, leak)
			}
		}
		return nil
	})
}

// TestDeviceCodeMessageIsCleaned: the device-code message and user code come from the
// identity provider and go to a terminal: screen clear, window title (OSC), bell,
// carriage return, a C1 CSI and a bidi override never reach it; the text around them
// does.
func TestDeviceCodeMessageIsCleaned(t *testing.T) {
	t.Parallel()
	e, idp := newEnv(t)
	idp.SetMode(harness.EchoDeviceEscapes)
	res := e.Consent()
	for _, bad := range []string{"\x1b", "\x07", "\r", "\u009b", "\u202e"} {
		if strings.Contains(res.Stderr, bad) {
			t.Errorf("stderr holds %q:\n%q", bad, res.Stderr)
		}
	}
	if !strings.Contains(res.Stderr, "FAKE PROMPT") || !strings.Contains(res.Stderr, "pwned-title") {
		t.Errorf("the message itself was not shown:\n%q", res.Stderr)
	}
}
