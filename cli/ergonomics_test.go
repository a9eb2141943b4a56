package cli

import (
	"os/exec"
	"strings"
	"testing"

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

func TestCleanText(t *testing.T) {
	if got := cleanText("a\x1b[31mb\nc\x07", 100); got != "a[31mb c" {
		t.Fatalf("cleanText = %q", got)
	}
	if got := cleanText(strings.Repeat("x", 20), 5); got != "xxxxx..." {
		t.Fatalf("cleanText bound = %q", got)
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
