package consumers

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/testca"
)

// graphURL is Microsoft Graph in the CI recipes; tests point it at graphAPI.
const graphURL = "https://graph.microsoft.com"

// graphAPI is a local Microsoft Graph for one tenant, for curl.
type graphAPI struct {
	url    string
	caFile string
	api    apiServer

	mu       sync.Mutex
	accepted int
	refused  []string
}

func newGraphAPI(t *testing.T, sim *entrasim.Sim, tenant string) *graphAPI {
	t.Helper()
	ca := testca.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &graphAPI{url: "https://" + ln.Addr().String(), caFile: ca.File, api: apiServer{sim: sim, audience: graphURL, tenant: tenant}}
	serveTLS(t, ln, ca.ServerCert(t, "127.0.0.1"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		defer g.mu.Unlock()
		if _, err := g.api.check(bearer(r)); err != nil {
			g.refused = append(g.refused, err.Error())
			http.Error(w, `{"error":{"code":"InvalidAuthenticationToken"}}`, http.StatusUnauthorized)
			return
		}
		g.accepted++
		io.WriteString(w, `{"value":[{"id":"`+tenant+`","displayName":"Fabrikam"}]}`)
	}))
	return g
}

// curlAvailable reports whether the recipes' curl steps can run here.
func curlAvailable(t *testing.T) bool {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Log("curl is not on PATH: the steps calling Graph are skipped")
		return false
	}
	return true
}

// expressionRe matches ${{ context.name }} in a GitHub workflow.
var expressionRe = regexp.MustCompile(`\$\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}`)

type ghStep struct {
	Name string            `json:"name"`
	Uses string            `json:"uses"`
	Run  string            `json:"run"`
	Env  map[string]string `json:"env"`
}

type ghWorkflow struct {
	Jobs map[string]struct {
		Env   map[string]string `json:"env"`
		Steps []ghStep          `json:"steps"`
	} `json:"jobs"`
}

// ghRun is the outcome of a workflow run.
type ghRun struct {
	failed   string // name of the failed step, "" if none
	code     int
	logs     string // everything the steps printed
	masks    []string
	graphHit bool
}

// runGitHubJob runs the job's shell steps as a GitHub runner does: bash -e with
// pipefail, the job's and step's env with expressions resolved, GITHUB_ENV carried
// from step to step. `uses:` steps and the install step are skipped (the helper is
// on PATH already); Graph is the local one.
func runGitHubJob(t *testing.T, e *env, workflow string, expr map[string]string, g *graphAPI) ghRun {
	t.Helper()
	var wf ghWorkflow
	if err := yaml.Unmarshal([]byte(workflow), &wf); err != nil {
		t.Fatalf("the workflow is not valid YAML: %v", err)
	}
	job, ok := wf.Jobs["report"]
	if !ok {
		t.Fatal("the workflow has no job report")
	}
	resolve := func(s string) string {
		return expressionRe.ReplaceAllStringFunc(s, func(m string) string {
			name := expressionRe.FindStringSubmatch(m)[1]
			v, ok := expr[name]
			if !ok {
				t.Fatalf("the test does not know the expression %s", m)
			}
			return v
		})
	}
	dir := t.TempDir()
	githubEnv := filepath.Join(dir, "github_env")
	os.WriteFile(githubEnv, nil, 0o600)
	curl := curlAvailable(t)
	var res ghRun
	for i, st := range job.Steps {
		if st.Uses != "" || strings.HasPrefix(st.Name, "Install ") {
			continue
		}
		if st.Run == "" {
			t.Fatalf("step %d has neither uses nor run", i)
		}
		script := st.Run
		if strings.Contains(script, "curl ") {
			if !curl {
				continue
			}
			script = substitute(t, script, graphURL, g.url)
			res.graphHit = true
		}
		vars := []string{"GITHUB_ENV=" + githubEnv, "RUNNER_TEMP=" + dir, "CI=true", "GITHUB_ACTIONS=true", "CURL_CA_BUNDLE=" + g.caFile}
		for k, v := range job.Env {
			vars = append(vars, k+"="+resolve(v))
		}
		for k, v := range st.Env {
			vars = append(vars, k+"="+resolve(v))
		}
		vars = append(vars, readEnvFile(t, githubEnv)...)
		file := filepath.Join(dir, "step.sh")
		os.WriteFile(file, []byte(resolve(script)), 0o600)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := e.command(ctx, vars, "bash", "--noprofile", "--norc", "-eo", "pipefail", file)
		out, stderr, code := run(t, cmd, "")
		cancel()
		res.logs += out + stderr
		for _, line := range strings.Split(out, "\n") {
			if m, ok := strings.CutPrefix(line, "::add-mask::"); ok {
				res.masks = append(res.masks, m)
			}
		}
		if code != 0 {
			res.failed, res.code = st.Name, code
			return res
		}
	}
	return res
}

func readEnvFile(t *testing.T, path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "=") {
			out = append(out, sc.Text())
		}
	}
	return out
}

// checkMasked fails if a secret shows in the logs other than in its mask command.
func checkMasked(t *testing.T, logs string, secrets ...string) {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		if strings.HasPrefix(line, "::add-mask::") {
			continue
		}
		if strings.HasPrefix(line, "##vso[task.setvariable") && strings.Contains(line, ";issecret=true]") {
			continue
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(line, s) {
				t.Errorf("a secret shows unmasked in the log: %.40q...", line)
			}
		}
	}
}

// ciEnv is a CI runner's environment: no saved profile, no secure store settings,
// and the app's id only from the workflow.
func ciEnv(t *testing.T) (*env, string) {
	e := newEnv(t)
	rt := rawRefreshToken(t, e.Sim)
	for _, k := range []string{"PCTOKEN_CLIENT_ID", "PCTOKEN_STORE", "PCTOKEN_STORE_DIR", "PCTOKEN_FILE_PASSPHRASE"} {
		delete(e.Vars, k)
	}
	return e, rt
}

// TestGitHubActionsRecipe runs the documented workflow with the refresh token from a
// secret: the Graph token is masked before it is printed anywhere, reaches the next
// step through GITHUB_ENV, and Graph accepts it.
func TestGitHubActionsRecipe(t *testing.T) {
	e, rt := ciEnv(t)
	g := newGraphAPI(t, e.Sim, entrasim.CustomerTenantID)
	expr := map[string]string{"vars.PCTOKEN_CLIENT_ID": entrasim.PublicClientID, "secrets.PCTOKEN_REFRESH_TOKEN": rt}
	res := runGitHubJob(t, e, recipe(t, "ci.md", "github-actions"), expr, g)
	if res.failed != "" {
		t.Fatalf("step %q failed with exit %d:\n%s", res.failed, res.code, res.logs)
	}
	if len(res.masks) != 1 {
		t.Fatalf("%d masks, want the token's", len(res.masks))
	}
	c, err := e.Sim.ValidateAccessToken(res.masks[0])
	if err != nil || c.TenantID != entrasim.CustomerTenantID {
		t.Fatalf("the masked value is not a customer token: %v", err)
	}
	checkMasked(t, res.logs, res.masks[0], rt)
	if !strings.Contains(res.logs, "cannot be updated") {
		t.Errorf("CI mode did not say that the rotated refresh token is not saved:\n%s", res.logs)
	}
	if res.graphHit && (g.accepted != 1 || len(g.refused) != 0) {
		t.Errorf("Graph accepted %d, refused %v", g.accepted, g.refused)
	}

	// An expired refresh token fails the token step, with the remedy in the log and
	// nothing handed on.
	e.Sim.ExpireRefreshTokens()
	e.Vars["XDG_CACHE_HOME"] = t.TempDir() // a new runner: no cached token
	res = runGitHubJob(t, e, recipe(t, "ci.md", "github-actions"), expr, g)
	if res.failed != "Get a Graph token for the customer" || res.code != 3 {
		t.Fatalf("with an expired refresh token: step %q exit %d\n%s", res.failed, res.code, res.logs)
	}
	if !strings.Contains(res.logs, "AADSTS700082") || !strings.Contains(res.logs, "hint: pctoken-helper consent") {
		t.Errorf("the log does not say what to do:\n%s", res.logs)
	}
	if len(res.masks) != 0 {
		t.Errorf("masks %d after a failure", len(res.masks))
	}
}

// TestGitHubActionsSecureStoreRecipe: a self-hosted runner where consent happened
// once; the job supplies only the file store's passphrase.
func TestGitHubActionsSecureStoreRecipe(t *testing.T) {
	e := newEnv(t)
	e.Consent("--profile", "contoso")
	for _, k := range []string{"PCTOKEN_CLIENT_ID", "PCTOKEN_STORE", "PCTOKEN_STORE_DIR", "PCTOKEN_FILE_PASSPHRASE"} {
		delete(e.Vars, k)
	}
	g := newGraphAPI(t, e.Sim, entrasim.CustomerTenantID)
	wf := recipe(t, "ci.md", "github-actions-store")
	res := runGitHubJob(t, e, wf, map[string]string{"secrets.PCTOKEN_FILE_PASSPHRASE": "harness-file-store-passphrase"}, g)
	if res.failed != "" {
		t.Fatalf("step %q failed with exit %d:\n%s", res.failed, res.code, res.logs)
	}
	if len(res.masks) != 1 {
		t.Fatalf("%d masks", len(res.masks))
	}
	checkMasked(t, res.logs, res.masks[0])
	if res.graphHit && g.accepted != 1 {
		t.Errorf("Graph accepted %d, refused %v", g.accepted, g.refused)
	}
	if strings.Contains(res.logs, "cannot be updated") {
		t.Error("the secure store run warned as in CI mode")
	}
	// A wrong passphrase fails with a configuration error, not a prompt.
	e.Vars["XDG_CACHE_HOME"] = t.TempDir()
	res = runGitHubJob(t, e, wf, map[string]string{"secrets.PCTOKEN_FILE_PASSPHRASE": "wrong"}, g)
	if res.failed == "" || res.code != 5 {
		t.Fatalf("with a wrong passphrase: step %q exit %d\n%s", res.failed, res.code, res.logs)
	}
}

type azPipeline struct {
	Variables []struct {
		Group string `json:"group"`
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"variables"`
	Steps []struct {
		Task        string            `json:"task"`
		Script      string            `json:"script"`
		DisplayName string            `json:"displayName"`
		Env         map[string]string `json:"env"`
	} `json:"steps"`
}

var (
	macroRe       = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_.]*)\)`)
	setVariableRe = regexp.MustCompile(`^##vso\[task\.setvariable variable=([^;\]]+)((?:;[^\]]*)?)\](.*)$`)
)

// runAzurePipeline runs the pipeline's script steps as an agent does: plain bash,
// $(macros) expanded, non-secret variables in the environment, secret ones only
// where a step maps them, ##vso setvariable commands honoured.
func runAzurePipeline(t *testing.T, e *env, pipeline string, group, secrets map[string]string, g *graphAPI) (failed string, code int, logs string, published map[string]string) {
	t.Helper()
	var p azPipeline
	if err := yaml.Unmarshal([]byte(pipeline), &p); err != nil {
		t.Fatalf("the pipeline is not valid YAML: %v", err)
	}
	vars, secret := map[string]string{}, map[string]bool{}
	for _, v := range p.Variables {
		switch {
		case v.Group == "pctoken":
			for k, val := range group {
				vars[k] = val
			}
			for k, val := range secrets {
				vars[k], secret[k] = val, true
			}
		case v.Group != "":
			t.Fatalf("unknown variable group %q", v.Group)
		default:
			vars[v.Name] = v.Value
		}
	}
	expand := func(s string) string {
		return macroRe.ReplaceAllStringFunc(s, func(m string) string {
			if v, ok := vars[macroRe.FindStringSubmatch(m)[1]]; ok {
				return v
			}
			return m // the agent leaves unknown macros alone
		})
	}
	dir := t.TempDir()
	curl := curlAvailable(t)
	published = map[string]string{}
	for _, st := range p.Steps {
		if st.Task != "" || strings.HasPrefix(st.DisplayName, "Install ") {
			continue
		}
		script := st.Script
		if strings.Contains(script, "curl ") {
			if !curl {
				continue
			}
			script = substitute(t, script, graphURL, g.url)
		}
		env := []string{"TF_BUILD=True", "AGENT_TEMPDIRECTORY=" + dir, "CURL_CA_BUNDLE=" + g.caFile}
		for k, v := range vars {
			if !secret[k] {
				env = append(env, strings.ToUpper(strings.ReplaceAll(k, ".", "_"))+"="+v)
			}
		}
		for k, v := range st.Env {
			env = append(env, k+"="+expand(v))
		}
		file := filepath.Join(dir, "script.sh")
		os.WriteFile(file, []byte(expand(script)), 0o600)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, stderr, c := run(t, e.command(ctx, env, "bash", "--noprofile", "--norc", file), "")
		cancel()
		logs += out + stderr
		for _, line := range strings.Split(out, "\n") {
			if m := setVariableRe.FindStringSubmatch(line); m != nil {
				vars[m[1]] = m[3]
				secret[m[1]] = strings.Contains(m[2], "issecret=true")
				published[m[1]] = m[3]
			}
		}
		if c != 0 {
			return st.DisplayName, c, logs, published
		}
	}
	return "", 0, logs, published
}

// TestAzurePipelinesRecipe runs the documented pipeline: the token is published as a
// secret variable, mapped into the next step, and accepted by Graph; with an expired
// refresh token the step fails instead of publishing an empty variable.
func TestAzurePipelinesRecipe(t *testing.T) {
	e, rt := ciEnv(t)
	g := newGraphAPI(t, e.Sim, entrasim.CustomerTenantID)
	group := map[string]string{"PCTOKEN_CLIENT_ID": entrasim.PublicClientID}
	secrets := map[string]string{"PCTOKEN_REFRESH_TOKEN": rt}
	failed, code, logs, published := runAzurePipeline(t, e, recipe(t, "ci.md", "azure-pipelines"), group, secrets, g)
	if failed != "" {
		t.Fatalf("step %q: exit %d\n%s", failed, code, logs)
	}
	tok := published["GRAPH_TOKEN"]
	if c, err := e.Sim.ValidateAccessToken(tok); err != nil || c.TenantID != entrasim.CustomerTenantID {
		t.Fatalf("published GRAPH_TOKEN is not a customer token: %v", err)
	}
	checkMasked(t, logs, tok, rt)
	if curlAvailable(t) && g.accepted != 1 {
		t.Errorf("Graph accepted %d, refused %v", g.accepted, g.refused)
	}

	e.Sim.ExpireRefreshTokens()
	e.Vars["XDG_CACHE_HOME"] = t.TempDir()
	failed, code, logs, published = runAzurePipeline(t, e, recipe(t, "ci.md", "azure-pipelines"), group, secrets, g)
	if failed != "Get a Graph token for the customer" || code != 3 {
		t.Fatalf("with an expired refresh token: step %q exit %d\n%s", failed, code, logs)
	}
	if _, ok := published["GRAPH_TOKEN"]; ok {
		t.Error("a failed step still published GRAPH_TOKEN")
	}
}
