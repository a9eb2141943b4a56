package cli

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/posener/complete"
)

func TestCompletionRequested(t *testing.T) {
	for _, tt := range []struct {
		line string
		args []string
		want bool
	}{
		{"", []string{"pctoken-helper", "g", "pctoken-helper"}, false},
		{"pctoken-helper g", []string{"pctoken-helper", "g", "pctoken-helper"}, true},
		{"/usr/local/bin/pctoken-helper g", []string{"pctoken-helper", "g", "pctoken-helper"}, true},
		{"pctoken-helper get --scope ", nil, true}, // fish and PowerShell pass no arguments
		// An ordinary run that inherited some other command's COMP_LINE.
		{"kubectl get po", []string{"exec-credential", "--scope", "aks"}, false},
		{"pctoken-helper get", []string{"get", "--profile", "a", "--scope", "b"}, false},
	} {
		getenv := func(k string) string {
			if k == "COMP_LINE" {
				return tt.line
			}
			return ""
		}
		if got := completionRequested(tt.args, getenv); got != tt.want {
			t.Errorf("completionRequested(%q, %q) = %v, want %v", tt.args, tt.line, got, tt.want)
		}
	}
}

// TestShellQuoteSurvivesTheShell: what a dry run prints is read back by sh as the
// same words.
func TestShellQuoteSurvivesTheShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	words := []string{"", "plain", "with space", "it's", `back\slash`, "$HOME", "!pctoken-helper git-credential", "*.visualstudio.com", "a\"b", "tab\there"}
	out, err := exec.Command(sh, "-c", `for w in `+shellJoin(words)+`; do printf '%s\n' "[$w]"; done`).Output()
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, w := range words {
		want.WriteString("[" + w + "]\n")
	}
	if string(out) != want.String() {
		t.Fatalf("sh read back:\n%s\nwant:\n%s", out, want.String())
	}
}

// FuzzCompletionLine: whatever the shell puts in COMP_LINE and COMP_POINT, reading
// the profile names' folder from it neither panics nor reads outside the line.
func FuzzCompletionLine(f *testing.F) {
	f.Add("pctoken-helper --config-dir /tmp/x profile show c", "50", "c")
	f.Add("pctoken-helper --config-dir=", "3", "")
	f.Add("\xff --config-dir", "-1", "x")
	f.Fuzz(func(t *testing.T, line, point, last string) {
		env := Env{Getenv: func(k string) string {
			switch k {
			case "COMP_LINE":
				return line
			case "COMP_POINT":
				return point
			case "PCTOKEN_CONFIG_DIR":
				return t.TempDir()
			}
			return ""
		}}
		_ = completionRequested([]string{"pctoken-helper", last, ""}, env.Getenv)
		_ = profileNames(complete.Args{Last: last}, env)
	})
}

// TestArgvToInputOfEverydayCommands: what kong hands profile, doctor, setup and
// completion for a command line (the table of TestArgvToInput, for the new commands).
func TestArgvToInputOfEverydayCommands(t *testing.T) {
	for _, k := range []string{"PCTOKEN_PROFILE", "PCTOKEN_TENANT"} {
		t.Setenv(k, "x")
		os.Unsetenv(k)
	}
	tests := []struct {
		argv []string
		cmd  string
		ok   func(r *Root) bool
	}{
		{[]string{"profile", "list"}, "profile list", func(r *Root) bool { return r.Profiles.List.Output == "text" }},
		{[]string{"profile", "show", "contoso", "-o", "json"}, "profile show <name>", func(r *Root) bool {
			return r.Profiles.Show.Name == "contoso" && r.Profiles.Show.Output == "json"
		}},
		{[]string{"profile", "show"}, "profile show", func(r *Root) bool { return r.Profiles.Show.Name == "" }},
		{[]string{"doctor", "--profile", "contoso", "-o", "json", "--timeout", "5s"}, "doctor", func(r *Root) bool {
			return r.Profile == "contoso" && r.Doctor.Output == "json" && r.Doctor.Timeout == 5*time.Second
		}},
		{[]string{"doctor"}, "doctor", func(r *Root) bool { return r.Doctor.Output == "text" && r.Doctor.Timeout == 30*time.Second }},
		{[]string{"setup", "git", "--host", "a.example", "--host", "*.b.example", "--scope", "azure-devops", "--dry-run"}, "setup git", func(r *Root) bool {
			g := r.Setup.Git
			return slices.Equal(g.Host, []string{"a.example", "*.b.example"}) && g.Scope == "azure-devops" && g.DryRun
		}},
		{[]string{"setup", "kubeconfig", "--kubeconfig", "/k", "--context", "c", "--scope", "aks", "--tenant", "t.example", "--dry-run"}, "setup kubeconfig", func(r *Root) bool {
			k := r.Setup.Kubeconfig
			return k.Kubeconfig == "/k" && k.Context == "c" && slices.Equal(k.Scope, []string{"aks"}) && r.Tenant == "t.example" && k.DryRun
		}},
		{[]string{"completion", "powershell"}, "completion <shell>", func(r *Root) bool { return r.Completion.Shell == "powershell" }},
	}
	for _, tt := range tests {
		r, kctx, err := parse(t, tt.argv...)
		if err != nil {
			t.Errorf("%q: %v", tt.argv, err)
			continue
		}
		if got := kctx.Command(); got != tt.cmd || !tt.ok(r) {
			t.Errorf("%q: command %q, input %+v", tt.argv, got, r)
		}
	}
	for _, argv := range [][]string{{"completion", "tcsh"}, {"profile", "show", "a", "b"}, {"doctor", "-o", "yaml"}} {
		if _, _, err := parse(t, argv...); err == nil {
			t.Errorf("%q was accepted", argv)
		}
	}
}
