package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/alecthomas/kong"
	"github.com/posener/complete"
	"github.com/willabides/kongplete"

	"github.com/pctoken/pctoken-helper/cloud"
	"github.com/pctoken/pctoken-helper/securestore"
	"github.com/pctoken/pctoken-helper/settings"
)

// Shell completion works as posener/complete (through kongplete, which derives the
// commands and flags from kong's model) has shells work: the shell runs the helper
// itself with the command line in COMP_LINE and the cursor in COMP_POINT, and the
// helper prints one candidate per line. bash calls it through `complete -C`, zsh
// through bashcompinit, fish and PowerShell through the small functions below,
// which set COMP_LINE themselves.

// CompletionCmd prints a shell's completion script.
type CompletionCmd struct {
	Shell string `arg:"" enum:"bash,zsh,fish,powershell" help:"bash, zsh, fish or powershell."`
}

func (c *CompletionCmd) Run(a *App) error {
	bin := helperCommand()
	var script string
	switch c.Shell {
	case "bash":
		script = "complete -o default -C " + shellQuote(bin) + " pctoken-helper\n"
	case "zsh":
		script = "(( $+functions[compdef] )) || { autoload -U +X compinit && compinit }\n" +
			"autoload -U +X bashcompinit && bashcompinit\n" +
			"complete -o default -C " + shellQuote(bin) + " pctoken-helper\n"
	case "fish":
		script = `function __complete_pctoken_helper
    set -lx COMP_LINE (commandline -cp)
    test -z (commandline -ct)
    and set COMP_LINE "$COMP_LINE "
    ` + fishQuote(bin) + `
end
complete -f -c pctoken-helper -a "(__complete_pctoken_helper)"
`
	case "powershell":
		script = strings.ReplaceAll(powershellScript, "@BIN@", strings.ReplaceAll(bin, "'", "''"))
	}
	_, err := fmt.Fprint(a.Stdout, script)
	return err
}

// powershellScript hands PowerShell's native argument completion the same protocol:
// the line up to the cursor in COMP_LINE, the candidates one per line. kongplete
// and posener/complete have no PowerShell script, hence this one.
const powershellScript = `Register-ArgumentCompleter -Native -CommandName pctoken-helper, pctoken-helper.exe -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)
    $line = $commandAst.ToString()
    $at = $cursorPosition - $commandAst.Extent.StartOffset
    if ($at -lt $line.Length) { $line = $line.Substring(0, $at) }
    if ($wordToComplete -eq '' -and -not $line.EndsWith(' ')) { $line += ' ' }
    $env:COMP_LINE = $line
    $env:COMP_POINT = $line.Length
    try { $candidates = & '@BIN@' } finally {
        Remove-Item Env:COMP_LINE, Env:COMP_POINT -ErrorAction SilentlyContinue
    }
    $candidates | Where-Object { $_ -like "$wordToComplete*" } | ForEach-Object {
        [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_)
    }
}
`

func fishQuote(s string) string {
	if shellQuote(s) == s {
		return s
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// completionRequested reports whether this run is a shell asking for candidates:
// COMP_LINE is set, and the arguments are those bash's `complete -C` passes (the
// command's name, the word, the previous word) or none (the fish and PowerShell
// functions). A COMP_LINE exported by accident into an ordinary run (kubectl
// running the plugin from inside some completion function) does not turn that run
// into a completion.
func completionRequested(args []string, getenv func(string) string) bool {
	line := getenv("COMP_LINE")
	if line == "" {
		return false
	}
	if len(args) == 0 {
		return true
	}
	first, _, _ := strings.Cut(strings.TrimLeft(line, " "), " ")
	return len(args) <= 3 && filepath.Base(args[0]) == filepath.Base(first)
}

// completeLine answers a completion request from kong's model of the command line, with
// profile names from the config folder and scope aliases added.
func completeLine(parser *kong.Kong, env Env) int {
	cmd, err := kongplete.Command(parser,
		kongplete.WithPredictor("profile", complete.PredictFunc(func(a complete.Args) []string { return profileNames(a, env) })),
		kongplete.WithPredictor("scope", complete.PredictSet(cloud.Aliases()...)),
	)
	if err != nil {
		return exitFailure // a broken model: no candidates rather than noise on the line
	}
	byFlag := map[string]complete.Predictor{
		"--profile": complete.PredictFunc(func(a complete.Args) []string { return profileNames(a, env) }),
		"--scope":   complete.PredictSet(cloud.Aliases()...),
		"-s":        complete.PredictSet(cloud.Aliases()...),
		"--scopes":  complete.PredictSet(cloud.Aliases()...),
		"--cloud":   complete.PredictSet(cloud.Names()...),
		"--store":   complete.PredictSet(securestore.Backends...),
		"--tenant":  complete.PredictNothing,
	}
	setPredictors(&cmd, byFlag)
	c := complete.New("pctoken-helper", cmd)
	c.Out = env.Stdout
	c.Complete()
	return exitOK
}

// setPredictors gives the flags of every command their value predictors.
func setPredictors(cmd *complete.Command, byFlag map[string]complete.Predictor) {
	for name := range cmd.GlobalFlags {
		if p, ok := byFlag[name]; ok {
			cmd.GlobalFlags[name] = p
		}
	}
	for name, sub := range cmd.Sub {
		setPredictors(&sub, byFlag)
		cmd.Sub[name] = sub
	}
}

// profileNames are the saved profiles, from the config folder the line names with
// --config-dir, else PCTOKEN_CONFIG_DIR, else the default one.
func profileNames(a complete.Args, env Env) []string {
	g := settings.Given{ConfigDir: env.Getenv("PCTOKEN_CONFIG_DIR")}
	// The whole line, not a: inside a command, a holds only the words after it.
	line := env.Getenv("COMP_LINE")
	if point, err := strconv.Atoi(env.Getenv("COMP_POINT")); err == nil && point >= 0 && point < len(line) {
		line = line[:point]
	}
	words := strings.Fields(line)
	if len(words) > 0 && a.Last != "" {
		words = words[:len(words)-1] // the word being typed
	}
	for i, w := range words {
		if v, ok := strings.CutPrefix(w, "--config-dir="); ok {
			g.ConfigDir = v
		} else if w == "--config-dir" && i+1 < len(words) {
			g.ConfigDir = words[i+1]
		}
	}
	if strings.HasPrefix(g.ConfigDir, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			g.ConfigDir = filepath.Join(home, g.ConfigDir[2:])
		}
	}
	dir, err := g.Profiles()
	if err != nil {
		return nil
	}
	names, _ := dir.List()
	return names
}
