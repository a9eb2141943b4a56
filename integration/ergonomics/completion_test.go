package ergonomics

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/internal/testpty"
)

// bashComplete loads the bash script in a real bash, reads back the registration
// with `complete -p`, and runs the command it names exactly as bash does on TAB:
// COMP_LINE and COMP_POINT set, the command name, current word and previous word as
// arguments.
func bashComplete(t *testing.T, e *env, line string) []string {
	t.Helper()
	words := strings.Split(line, " ")
	cur, prev := words[len(words)-1], ""
	if len(words) > 1 {
		prev = words[len(words)-2]
	}
	script := `set -e
eval "$(pctoken-helper completion bash)"
spec=$(complete -p pctoken-helper)
case "$spec" in *" -C "*) ;; *) echo "not registered with -C: $spec" >&2; exit 1;; esac
cmd=${spec#* -C }
cmd=${cmd% pctoken-helper}
export COMP_LINE="$1" COMP_POINT=${#1}
eval "$cmd pctoken-helper \"\$2\" \"\$3\""
`
	out, stderr, code := e.program(t, "", nil, "bash", "--norc", "--noprofile", "-c", script, "bash", line, cur, prev)
	if code != 0 {
		t.Fatalf("bash completion of %q: exit %d\n%s", line, code, stderr)
	}
	return strings.Fields(out)
}

func has(list []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, l := range list {
			found = found || l == w
		}
		if !found {
			return false
		}
	}
	return true
}

func TestBashCompletion(t *testing.T) {
	e := newEnv(t)
	e.Consent("--profile", "contoso")
	e.Consent("--profile", "fabrikam")

	for _, tt := range []struct {
		line string
		want []string
		not  []string
	}{
		{"pctoken-helper ", []string{"get", "consent", "doctor", "setup", "profile", "completion"}, nil},
		{"pctoken-helper pro", []string{"profile"}, []string{"get"}},
		{"pctoken-helper profile ", []string{"list", "show"}, nil},
		{"pctoken-helper profile show ", []string{"contoso", "fabrikam"}, nil},
		{"pctoken-helper profile show con", []string{"contoso"}, []string{"fabrikam"}},
		{"pctoken-helper get --profile fa", []string{"fabrikam"}, []string{"contoso"}},
		{"pctoken-helper get --scope ", []string{"graph", "arm", "aks", "azure-devops", "partner-center"}, nil},
		{"pctoken-helper get --scope gr", []string{"graph"}, []string{"aad-graph"}},
		{"pctoken-helper get -o ", []string{"json", "token", "az", "azd"}, nil},
		{"pctoken-helper get --for", []string{"--force-refresh"}, nil},
		{"pctoken-helper completion ", []string{"bash", "zsh", "fish", "powershell"}, nil},
		{"pctoken-helper --cloud ", []string{"public", "usgov", "china"}, nil},
		{"pctoken-helper setup kubeconfig --sc", []string{"--scope"}, nil},
	} {
		got := bashComplete(t, e, tt.line)
		if !has(got, tt.want...) {
			t.Errorf("%q completes to %v, want %v among them", tt.line, got, tt.want)
		}
		for _, n := range tt.not {
			if has(got, n) {
				t.Errorf("%q completes to %v, which should not hold %s", tt.line, got, n)
			}
		}
	}

	// Profile names come from the config folder the line names.
	other := t.TempDir()
	e.MustRun("--config-dir", other, "import", "--help") // an empty folder of its own
	if got := bashComplete(t, e, "pctoken-helper --config-dir "+other+" profile show "); len(got) != 0 {
		t.Errorf("profiles of an empty --config-dir: %v", got)
	}
}

// TestCompletionOnATerminal types a command with TAB into an interactive shell on a
// pseudo-terminal, after the line getting-started.md gives for that shell: the
// completed profile name is what the command then runs with.
func TestCompletionOnATerminal(t *testing.T) {
	e := newEnv(t)
	e.Consent("--profile", "contoso")
	for _, sh := range []struct {
		name  string
		argv  []string
		setup []string
	}{
		// The line docs/getting-started.md says to put in ~/.bashrc.
		{"bash", []string{"--norc", "--noprofile", "-i"}, strings.Split(strings.TrimSpace(recipe(t, "getting-started.md", "completion-bash")), "\n")},
		{"zsh", []string{"-f", "-i"}, []string{"source <(pctoken-helper completion zsh)"}},
		{"fish", []string{"--no-config", "-i"}, []string{"pctoken-helper completion fish | source"}},
	} {
		t.Run(sh.name, func(t *testing.T) {
			path, err := exec.LookPath(sh.name)
			if err != nil {
				t.Skipf("%s is not installed", sh.name)
			}
			typeWithTab(t, e, append([]string{path}, sh.argv...), sh.setup)
		})
	}
}

func typeWithTab(t *testing.T, e *env, argv, setup []string) {
	p := testpty.Open(t)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = e.environ("PS1=$ ", "PROMPT=$ ", "TERM=dumb", "INPUTRC=/dev/null", "ZDOTDIR="+t.TempDir())
	cmd.Dir = t.TempDir()
	p.Attach(cmd, true)
	cmd.Stdout, cmd.Stderr = p.Slave, p.Slave
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	var screen bytes.Buffer
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		buf := make([]byte, 4096)
		for !strings.Contains(screen.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("the terminal never showed %q:\n%q", want, screen.String())
			}
			p.Master.SetReadDeadline(time.Now().Add(time.Second))
			n, _ := p.Master.Read(buf)
			screen.Write(buf[:n])
		}
	}
	for _, line := range setup {
		p.Master.WriteString(line + "\n")
	}
	// The marker is printed by the shell, not echoed: the echo shows the quotes.
	p.Master.WriteString("echo READY'-'OK\n")
	waitFor("READY-OK")
	// "con" + TAB becomes "contoso": the command prints that profile's client id,
	// which "con" alone would not (it would fail, naming contoso as a suggestion).
	p.Master.WriteString("pctoken-helper profile show con\t")
	time.Sleep(500 * time.Millisecond) // let the completion land before Enter (not asserted on)
	p.Master.WriteString("\n")
	waitFor(entrasim.PublicClientID)
	p.Master.WriteString("exit\n")
}

func TestOtherShells(t *testing.T) {
	e := newEnv(t)
	e.Consent("--profile", "contoso")

	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		res := e.MustRun("completion", sh)
		if !strings.Contains(res.Stdout, "pctoken-helper") || res.Stderr != "" {
			t.Errorf("completion %s: %q / %q", sh, res.Stdout, res.Stderr)
		}
	}
	ps := e.MustRun("completion", "powershell").Stdout
	for _, want := range []string{"Register-ArgumentCompleter -Native -CommandName pctoken-helper", "$env:COMP_LINE", "& 'pctoken-helper'"} {
		if !strings.Contains(ps, want) {
			t.Errorf("the PowerShell script lacks %q:\n%s", want, ps)
		}
	}
	if res := e.Run("completion", "tcsh"); res.Code != 2 {
		t.Errorf("completion tcsh: exit %d", res.Code)
	}

	t.Run("fish", func(t *testing.T) {
		if _, err := exec.LookPath("fish"); err != nil {
			t.Skip("fish is not installed (apt-get install fish)")
		}
		out, stderr, code := e.program(t, "", nil, "fish", "--no-config", "-c",
			`pctoken-helper completion fish | source; complete -C "pctoken-helper profile show con"; complete -C "pctoken-helper get --scope gr"`)
		if code != 0 || !has(strings.Fields(out), "contoso", "graph") {
			t.Fatalf("fish: exit %d, %q\n%s", code, out, stderr)
		}
	})

	t.Run("zsh", func(t *testing.T) {
		if _, err := exec.LookPath("zsh"); err != nil {
			t.Skip("zsh is not installed (apt-get install zsh)")
		}
		// The script loads in a bare zsh and registers the helper with bashcompinit.
		out, stderr, code := e.program(t, "", []string{"ZDOTDIR=" + t.TempDir()}, "zsh", "-f", "-c",
			`source <(pctoken-helper completion zsh) && print -r -- "$_comps[pctoken-helper]"`)
		if code != 0 || !strings.Contains(out, "_bash_complete") || strings.TrimSpace(stderr) != "" {
			t.Fatalf("zsh: exit %d, %q\n%s", code, out, stderr)
		}
	})
}

// TestCompletionLeavesOrdinaryRunsAlone: a COMP_LINE exported into an ordinary run
// (a plugin started from inside some other completion) does not turn it into one.
func TestCompletionLeavesOrdinaryRunsAlone(t *testing.T) {
	e := newEnv(t)
	e.Consent("--profile", "contoso")
	e.Vars["COMP_LINE"] = "kubectl get po"
	defer delete(e.Vars, "COMP_LINE")
	res := e.MustRun("profile", "list", "-o", "json")
	var l listed
	decodeJSON(t, res.Stdout, &l)
	if len(l.Profiles) != 1 {
		t.Fatalf("profile list under a stray COMP_LINE: %s", res.Stdout)
	}
}
