package ergonomics

import (
	"regexp"
	"strings"
	"testing"
)

// TestHelpForAPerson: a command's help shows its own flags before the shared ones,
// under their headings, with defaults and examples; no arguments and "help CMD" are
// help, not errors; the version names commit, date and Go version.
func TestHelpForAPerson(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	get := e.MustRun("get", "--help").Stdout
	own, global := strings.Index(get, "\nFlags:\n"), strings.Index(get, "\nGlobal flags:\n")
	if own < 0 || global < own {
		t.Fatalf("get --help: want the command's flags under Flags: before Global flags:\n%s", get)
	}
	if scope, profile := strings.Index(get, "--scope="), strings.Index(get, "--profile="); scope < own || scope > global || profile < global {
		t.Errorf("get --help: --scope must be among get's flags and --profile among the global ones\n%s", get)
	}
	for _, want := range []string{"Examples:", "pctoken-helper get --profile contoso --scope graph", "(default: 5m)", "--output=json|token|az|azd", "(default: json)", "else partner-center"} {
		if !strings.Contains(get, want) {
			t.Errorf("get --help lacks %q\n%s", want, get)
		}
	}
	if git := e.MustRun("git-credential", "--help").Stdout; !strings.Contains(strings.Join(strings.Fields(git), " "), "(default: dev.azure.com,*.visualstudio.com)") {
		t.Errorf("git-credential --help does not show --host's default\n%s", git)
	}

	root := e.Run()
	if root.Code != 0 || !strings.Contains(root.Stdout, "Getting tokens:") || !strings.Contains(root.Stdout, "Setting up:") {
		t.Fatalf("no arguments: exit %d, want the grouped command list on stdout\n%s%s", root.Code, root.Stdout, root.Stderr)
	}
	if cmds, flags := strings.Index(root.Stdout, "Getting tokens:"), strings.Index(root.Stdout, "Global flags:"); flags < cmds {
		t.Errorf("no arguments: the commands should come before the shared flags\n%s", root.Stdout)
	}
	if h := e.MustRun("help", "get").Stdout; h != get {
		t.Errorf("help get differs from get --help:\n%s", h)
	}

	line := regexp.MustCompile(`^pctoken-helper \S+ \(commit \S+, built \S+, go1\.\d+[^ ]* \w+/\w+\)\n$`)
	for _, args := range [][]string{{"version"}, {"--version"}, {"-V"}} {
		if out := e.MustRun(args...).Stdout; !line.MatchString(out) {
			t.Errorf("%s printed %q, want version, commit, date and Go version", args[0], out)
		}
	}
}
