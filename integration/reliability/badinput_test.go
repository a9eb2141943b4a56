package reliability

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/harness"
)

// badInputLimit bounds every run of the bad-input matrix: a bad input must be refused
// at once, never waited on.
const badInputLimit = 10 * time.Second

// runOpen runs the helper with stdin written to a pipe that is left open until the
// process exits when open is set (as a caller that never closes its end would), and
// closed after stdin otherwise. It fails the test if the run outlasts limit.
func runOpen(t testing.TB, e *harness.Env, limit time.Duration, stdin string, open bool, env map[string]string, args ...string) harness.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := e.Command(ctx, args...)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = r, &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	go func() {
		io.WriteString(w, stdin) // may fail once the helper has stopped reading
		if !open {
			w.Close()
		}
	}()
	err = cmd.Wait()
	w.Close()
	if ctx.Err() != nil {
		t.Fatalf("pctoken-helper %s (stdin open: %v): still running after %s\nstderr: %s", short(strings.Join(args, " ")), open, limit, short(errb.String()))
	}
	res := harness.Result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run pctoken-helper: %v", err)
	}
	return res
}

func short(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// TestBadInputIsRefusedClearly is the bad-input matrix: flags, settings, request
// formats of kubectl and git, secrets on stdin. Each is refused with exit 2, an
// "error:" line naming the problem and a hint, no panic, in bounded time, also when
// the caller leaves stdin open. stdout carries nothing but the protocol's answer: an
// error object for get's json output, nothing for the others.
func TestBadInputIsRefusedClearly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.Consent()
	e.MustRun("get")

	huge := strings.Repeat("A", 100<<10) // under the 128 KiB Linux limit of one argument
	longLine := strings.Repeat("x", 70000)
	type tc struct {
		name  string
		args  []string
		env   map[string]string
		stdin string
		want  string // in the error line
	}
	execInfo := func(v string) map[string]string { return map[string]string{"KUBERNETES_EXEC_INFO": v} }
	cases := []tc{
		// No arguments at all shows help (exit 0, cli.TestHelpWithoutFlags); flags without
		// a command are still a usage error.
		{name: "no command", args: []string{"--profile", "x"}, want: "expected one of"},
		{name: "unknown command", args: []string{"frobnicate"}, want: "frobnicate"},
		{name: "git-credential without verb", args: []string{"git-credential"}, want: "verb"},
		{name: "bad duration", args: []string{"get", "--timeout", "soon"}, want: "--timeout"},
		{name: "negative min-validity", args: []string{"get", "--min-validity=-5m"}, want: "negative"},
		{name: "negative timeout", args: []string{"exec-credential", "-s", "partner-center", "--timeout=-1s"}, want: "negative"},
		{name: "bad output", args: []string{"get", "-o", "xml"}, want: "--output"},
		{name: "bad status output", args: []string{"status", "-o", "yaml"}, want: "--output"},
		{name: "parallel 0", args: []string{"get", "--request", "-", "--parallel", "0"}, want: "--parallel"},
		{name: "request file missing", args: []string{"get", "--request", filepath.Join(e.Dir, "nope.ndjson")}, want: "failed to read requests"},
		{name: "profile traversal", args: []string{"--profile", "../../etc/x", "get"}, want: "invalid profile name"},
		{name: "profile too long", args: []string{"--profile", strings.Repeat("p", 65), "get"}, want: "invalid profile name"},
		{name: "profile huge", args: []string{"--profile", huge, "get"}, want: "invalid profile name"},
		{name: "profile newline", args: []string{"--profile", "a\nb", "get"}, want: "invalid profile name"},
		{name: "profile in env", env: map[string]string{"PCTOKEN_PROFILE": "a/b"}, args: []string{"get"}, want: "invalid profile name"},
		{name: "unknown cloud", args: []string{"get", "--cloud", "mars"}, want: "unknown cloud"},
		{name: "http authority", args: []string{"get", "--authority-host", "http://127.0.0.1:1"}, want: "https"},
		{name: "empty authority", args: []string{"get", "--authority-host", "https://"}, want: "authority host"},
		{name: "tenant with a path", args: []string{"get", "--tenant", "../../x"}, want: "tenant"},
		{name: "tenant with a space", args: []string{"get", "--tenant", "a b"}, want: "tenant"},
		{name: "tenant huge", args: []string{"get", "--tenant", huge}, want: "tenant"},
		{name: "client id huge", args: []string{"get", "--client-id", huge}, want: "client id"},
		{name: "client id not a guid", args: []string{"get", "--client-id", "my app"}, want: "client id"},
		{name: "two resources", args: []string{"get", "--scope", "graph", "--scope", "arm"}, want: "one resource"},
		{name: "bad verbose variable", env: map[string]string{"PCTOKEN_VERBOSE": "maybe"}, args: []string{"get"}, want: "verbose"},
		{name: "consent port range", args: []string{"consent", "--port-range", "9000-8000", "--no-browser"}, want: "port range"},
		{name: "consent flow", args: []string{"consent", "--flow", "carrier-pigeon"}, want: "--flow"},

		{name: "exec info not json", args: []string{"exec-credential", "-s", "partner-center"}, env: execInfo("not json"), want: "KUBERNETES_EXEC_INFO"},
		{name: "exec info empty object", args: []string{"exec-credential", "-s", "partner-center"}, env: execInfo("{}"), want: "KUBERNETES_EXEC_INFO"},
		{name: "exec info unknown version", args: []string{"exec-credential", "-s", "partner-center"}, env: execInfo(`{"apiVersion":"client.authentication.k8s.io/v9","kind":"ExecCredential","spec":{}}`), want: "apiVersion"},
		{name: "exec info wrong kind", args: []string{"exec-credential", "-s", "partner-center"}, env: execInfo(`{"apiVersion":"client.authentication.k8s.io/v1","kind":"Pod","spec":{}}`), want: "KUBERNETES_EXEC_INFO"},
		{name: "exec info trailing data", args: []string{"exec-credential", "-s", "partner-center"}, env: execInfo(`{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{}} {}`), want: "KUBERNETES_EXEC_INFO"},
		{name: "exec info deep nesting", args: []string{"exec-credential", "-s", "partner-center"}, env: execInfo(strings.Repeat("[", 100000)), want: "KUBERNETES_EXEC_INFO"},
		{name: "exec info bad utf-8", args: []string{"exec-credential", "-s", "partner-center"}, env: execInfo("{\"apiVersion\":\"\xff\xfe\"}"), want: "KUBERNETES_EXEC_INFO"},
		{name: "exec info cluster config types", args: []string{"exec-credential", "-s", "partner-center"}, env: execInfo(`{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false,"cluster":{"server":"https://k","config":{"scopes":5}}}}`), want: "KUBERNETES_EXEC_INFO"},

		{name: "git line without =", args: []string{"git-credential", "get"}, stdin: "protocol=https\nhost dev.azure.com\n\n", want: "line 2"},
		{name: "git NUL byte", args: []string{"git-credential", "get"}, stdin: "protocol=https\nhost=dev.azure.com\x00evil.example\n\n", want: "NUL"},
		{name: "git line too long", args: []string{"git-credential", "get"}, stdin: "protocol=https\nhost=" + longLine, want: "longer than"},
		{name: "git request too long", args: []string{"git-credential", "get"}, stdin: strings.Repeat("wwwauth[]="+strings.Repeat("w", 1000)+"\n", 300), want: "longer than"},

		{name: "import nothing", args: []string{"import"}, stdin: "\n", want: "no refresh token"},
		{name: "import line too long", args: []string{"import"}, stdin: longLine, want: "longer than"},
		{name: "consent secret nothing", args: []string{"consent", "--client-secret-stdin", "--no-browser", "--timeout", "5s"}, stdin: "\n", want: "no client secret"},
		{name: "consent secret too long", args: []string{"consent", "--client-secret-stdin", "--no-browser", "--timeout", "5s"}, stdin: longLine, want: "longer than"},
	}
	for _, c := range cases {
		for _, open := range []bool{false, true} {
			res := runOpen(t, e, badInputLimit, c.stdin, open, c.env, c.args...)
			name := c.name
			if open {
				name += " (stdin left open)"
			}
			noPanic(t, name, res)
			if res.Code != 2 {
				t.Errorf("%s: exit %d, want 2\nstdout: %s\nstderr: %s", name, res.Code, short(res.Stdout), short(res.Stderr))
				continue
			}
			first, _, _ := strings.Cut(res.Stderr, "\n")
			if !strings.HasPrefix(first, "error: ") || !strings.Contains(first, c.want) || !strings.Contains(res.Stderr, "\nhint: ") {
				t.Errorf("%s: want an error line about %q and a hint, got:\n%s", name, c.want, short(res.Stderr))
			}
			if len(first) > 1000 {
				t.Errorf("%s: the error line echoes the input (%d bytes)", name, len(first))
			}
			if res.Stdout != "" {
				var je jsonError
				if json.Unmarshal([]byte(res.Stdout), &je) != nil || je.Error == nil || je.Error.Code != "bad_input" {
					t.Errorf("%s: stdout is neither empty nor an error object: %s", name, short(res.Stdout))
				}
			}
		}
	}
}

// TestDamagedProfileIsAClearError: a saved profile that does not parse is a
// configuration error (exit 5) naming the file and the command that fixes it, for
// every command that reads it; status lists the others and warns.
func TestDamagedProfileIsAClearError(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.Consent()
	e.MustRun("get")
	path := filepath.Join(configDir(e), "profiles", "default.json")
	for _, damage := range [][]byte{[]byte("{garbage"), nil, []byte(`{"client_id":5}`), bytes.Repeat([]byte("["), 100000), bytes.Repeat([]byte(" "), 2<<20)} {
		if err := os.WriteFile(path, damage, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"get"}, {"get", "-o", "token"}, {"exec-credential", "-s", "partner-center"}, {"renew"}} {
			res := runOpen(t, e, badInputLimit, "", false, nil, args...)
			noPanic(t, "damaged profile", res)
			if res.Code != 5 || !strings.Contains(res.Stderr, "error: ") || !strings.Contains(res.Stderr, "consent --profile default") {
				t.Fatalf("%v with a damaged profile (%.20q): exit %d, want 5 and the remedy\n%s", args, damage, res.Code, short(res.Stderr))
			}
		}
	}
}

// TestRequestStreamWithStdinOpen: `get --request -` answers each line as it comes,
// bad ones with an error object carrying their id, without waiting for the end of
// input, and a bad line never stops the good ones. The exit code (2) comes when the
// caller closes its end.
func TestRequestStreamWithStdinOpen(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.Consent()
	e.MustRun("get", "--scope", "graph")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := e.Command(ctx, "get", "--request", "-", "--parallel", "1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func(what string) map[string]json.RawMessage {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("%s: stdout ended\nstderr: %s", what, errb.String())
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("%s: answer is not JSON: %s", what, short(l))
			}
			return m
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no answer within 10s while stdin stays open", what)
		}
		return nil
	}
	send := func(line string) {
		t.Helper()
		if _, err := io.WriteString(stdin, line+"\n"); err != nil {
			t.Fatalf("write request: %v", err)
		}
	}
	steps := []struct {
		line   string
		id     string // the id the answer carries
		errors bool
	}{
		{`{"id":"broken",`, "null", true},
		{`{"id":"long","tenant":"` + strings.Repeat("t", 70000) + `"}`, "null", true},
		{`{"id":"neg","min_validity_seconds":-1}`, `"neg"`, true},
		{`{"id":"unknown","scope":["graph"]}`, `"unknown"`, true},
		{`{"id":{"nested":true}}`, "null", true},
		{`["not","an","object"]`, "null", true},
		{`{"id":"ok","scopes":["graph"]}`, `"ok"`, false},
		{`{"id":"tenant","tenant":"a/b"}`, `"tenant"`, true},
		{`{"id":"ok2","scopes":["graph"]}`, `"ok2"`, false},
	}
	for _, s := range steps {
		send(s.line)
		m := next(short(s.line))
		id := string(m["id"])
		if id == "" {
			id = "null"
		}
		_, isErr := m["error"]
		if isErr != s.errors || (s.id != "null" && id != s.id) {
			t.Fatalf("request %s: answer id %s, error %v; want id %s, error %v", short(s.line), id, isErr, s.id, s.errors)
		}
		if isErr {
			var eo struct{ Code, Message string }
			json.Unmarshal(m["error"], &eo)
			if eo.Code != "bad_input" || eo.Message == "" {
				t.Fatalf("request %s: error %s, want a bad_input error with a message", short(s.line), m["error"])
			}
		}
	}
	stdin.Close()
	if _, ok := <-lines; ok {
		t.Fatal("answers beyond one per request")
	}
	err = cmd.Wait()
	if cmd.ProcessState.ExitCode() != 2 {
		t.Fatalf("exit %d (%v), want 2 after bad requests\n%s", cmd.ProcessState.ExitCode(), err, errb.String())
	}
	noPanic(t, "request stream", harness.Result{Stderr: errb.String()})

	// Thousands of bad lines cost no more than reading them.
	var many strings.Builder
	for i := range 5000 {
		switch i % 3 {
		case 0:
			many.WriteString("{\n")
		case 1:
			many.WriteString(`{"id":1,"force_refresh":"yes"}` + "\n")
		default:
			many.WriteString("\x00\xff\n")
		}
	}
	res, took := timedRun(t, e, 30*time.Second, many.String(), "get", "--request", "-")
	if res.Code != 2 || strings.Count(res.Stdout, "\n") != 5000 || took > 10*time.Second {
		t.Fatalf("5000 bad lines: exit %d, %d answers, %s", res.Code, strings.Count(res.Stdout, "\n"), took)
	}
}

// TestStdinLeftOpenIsNotWaitedOn: the commands that read stdin stop at the end of what
// they need (git's blank line, the one line of a secret) and answer while the caller
// keeps its end open, as git and scripts may.
func TestStdinLeftOpenIsNotWaitedOn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.Consent()
	e.MustRun("get", "--scope", "azure-devops")
	cases := []struct {
		name, stdin string
		args        []string
		want        string // on stdout
	}{
		{"git-credential get", "protocol=https\nhost=dev.azure.com\n\n", []string{"git-credential", "--scope", "azure-devops", "get"}, "password="},
		{"git-credential get, other host", "protocol=https\nhost=evil.example\n\n", []string{"git-credential", "get"}, ""},
		{"git-credential store", "protocol=https\nhost=dev.azure.com\npassword=x\n\n", []string{"git-credential", "store"}, ""},
		{"git-credential erase", "protocol=https\nhost=dev.azure.com\npassword=x\n\n", []string{"git-credential", "erase"}, ""},
		{"import", storedRefreshToken(t, e, "default") + "\n", []string{"import", "--profile", "imported"}, ""},
		{"get", "", []string{"get", "-o", "token"}, "ey"},
		{"exec-credential", "", []string{"exec-credential", "-s", "partner-center"}, `"kind":"ExecCredential"`},
	}
	for _, c := range cases {
		res := runOpen(t, e, badInputLimit, c.stdin, true, nil, c.args...)
		noPanic(t, c.name, res)
		if res.Code != 0 || !strings.Contains(res.Stdout, c.want) || (c.want == "" && res.Stdout != "") {
			t.Fatalf("%s with stdin left open: exit %d\nstdout: %s\nstderr: %s", c.name, res.Code, short(res.Stdout), short(res.Stderr))
		}
	}
}
