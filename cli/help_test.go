package cli

import (
	"regexp"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// commandLine finds the helper's command line in an example line (also inside
// "$(...)" or before a pipe or redirect).
var commandLine = regexp.MustCompile(`pctoken-helper [^|<>&)"]*`)

// TestHelpExamplesParse: every example in every command's help is a command line
// that this program accepts as written, with its flags where the command has them.
func TestHelpExamplesParse(t *testing.T) {
	parser, err := kong.New(&Root{}, helpOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		for _, line := range strings.Split(n.Detail, "\n") {
			for _, m := range commandLine.FindAllString(line, -1) {
				seen++
				args := strings.Fields(m)[1:]
				if _, err := parser.Parse(args); err != nil {
					t.Errorf("%s help: example %q does not parse: %v", n.Path(), m, err)
				}
			}
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(parser.Model.Node)
	if seen < 20 {
		t.Fatalf("found %d examples in the help, want at least 20", seen)
	}
}

// TestEveryCommandHasExamples: a person reading any command's help sees how to use it.
func TestEveryCommandHasExamples(t *testing.T) {
	parser, err := kong.New(&Root{}, helpOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range parser.Model.Children {
		if n.Name == "version" {
			continue
		}
		if !strings.Contains(n.Detail, "Examples:") {
			t.Errorf("%s --help has no examples", n.Name)
		}
	}
}
