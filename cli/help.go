package cli

import (
	"reflect"
	"strings"
	"time"

	"github.com/alecthomas/kong"
)

// The help a person reads: a command's own flags first, the settings every command
// shares under their own heading, commands grouped by what they are for, every default
// shown, and examples to copy.

// Flag and command groups of the help.
var helpGroups = kong.Groups{
	"global":  "Global flags:",
	"tokens":  "Getting tokens:",
	"setup":   "Setting up:",
	"care":    "Looking after profiles:",
	"estate":  "Customer tenants:",
	"program": "About the program:",
}

// helpOptions lists commands before the flags every command shares, and flags with
// their defaults.
func helpOptions() []kong.Option {
	return []kong.Option{
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, FlagsLast: true}),
		kong.ValueFormatter(helpValue),
		helpGroups,
	}
}

// helpValue is kong's help text (with the flag's variable) plus the default, which
// kong would otherwise show only as the placeholder of flags that have none.
func helpValue(v *kong.Value) string {
	text := kong.DefaultHelpValueFormatter(v)
	if !v.HasDefault || v.Default == "" || v.IsBool() || strings.Contains(v.Help, "default") {
		return text
	}
	return strings.TrimSuffix(text, ".") + " (default: " + v.Default + ")."
}

// tidyHelp gives every flag with a default or a fixed set of values a placeholder
// that says what is expected (`--output=json|text`, `--timeout=DURATION`), since the
// default is now in the help text.
func tidyHelp(app *kong.Application) {
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		for _, f := range n.Flags {
			if f.PlaceHolder != "" || f.IsBool() {
				continue
			}
			switch {
			case f.Enum != "":
				f.PlaceHolder = strings.ReplaceAll(f.Enum, ",", "|")
			case f.Target.Type() == reflect.TypeOf(time.Duration(0)):
				f.PlaceHolder = "DURATION"
			case f.Target.Kind() == reflect.Int:
				f.PlaceHolder = "N"
			case f.HasDefault:
				f.PlaceHolder = strings.ToUpper(f.Name)
			}
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(app.Node)
}

// examples formats copy-paste examples for a command's help: pairs of a comment and
// a command line.
func examples(pairs ...string) string {
	var b strings.Builder
	b.WriteString("Examples:\n")
	for i := 0; i+1 < len(pairs); i += 2 {
		b.WriteString("\n    # " + pairs[i] + "\n    " + pairs[i+1] + "\n")
	}
	return b.String()
}

func (ConsentCmd) Help() string {
	return examples(
		"sign in once in a browser, for Partner Center (the default scope)",
		"pctoken-helper consent --profile contoso --client-id 11111111-2222-3333-4444-555555555555 --tenant contoso.onmicrosoft.com",
		"a confidential app: the secret from stdin, kept in the secure store",
		"pctoken-helper consent --profile contoso --client-id 11111111-2222-3333-4444-555555555555 --client-secret-stdin < secret.txt",
		"Exchange Online's public client, on a machine without a browser",
		"pctoken-helper consent --profile exo --client-id a0c73c16-a7e3-4564-9a95-2bdf47383716 --flow device-code --scopes exchange",
	)
}

func (ImportCmd) Help() string {
	return examples(
		"adopt a refresh token that another tool obtained",
		"pctoken-helper import --profile contoso --client-id 11111111-2222-3333-4444-555555555555 < refresh-token.txt",
	)
}

func (GetCmd) Help() string {
	return examples(
		"a Partner Center token (the profile's first scope) as JSON",
		"pctoken-helper get --profile contoso",
		"just the token, for a customer tenant's Microsoft Graph",
		"pctoken-helper get --profile contoso --scope graph --tenant fabrikam.onmicrosoft.com -o token",
		"many tenants at once: one JSON request per line on stdin",
		"pctoken-helper tenants --profile contoso -o ndjson --scope graph | pctoken-helper get --request -",
	)
}

func (ExecCredentialCmd) Help() string {
	return examples(
		"the kubeconfig user's exec command for AKS (setup kubeconfig writes it for you)",
		"pctoken-helper exec-credential --profile contoso --scope aks --tenant fabrikam.onmicrosoft.com",
	)
}

func (GitCredentialCmd) Help() string {
	return examples(
		"what git runs (setup git writes the configuration for you)",
		"pctoken-helper git-credential --profile contoso --scope azure-devops get",
	)
}

func (StatusCmd) Help() string {
	return examples(
		"every profile, its refresh token and cached tokens",
		"pctoken-helper status",
		"for monitoring: exit 3 when a refresh token ends within 14 days",
		"pctoken-helper status --warn-days 14 -o json",
	)
}

func (RenewCmd) Help() string {
	return examples(
		"keep every refresh token alive (from cron or a scheduled task)",
		"pctoken-helper renew --all",
	)
}

func (LogoutCmd) Help() string {
	return examples(
		"forget one profile",
		"pctoken-helper logout --profile contoso",
		"forget every profile, without asking (scripts)",
		"pctoken-helper logout --all --yes",
	)
}

func (TenantsCmd) Help() string {
	return examples(
		"the customer tenants reachable through GDAP",
		"pctoken-helper tenants --profile contoso",
		"one get --request line per tenant, for a batch",
		"pctoken-helper tenants --profile contoso -o ndjson --scope graph",
	)
}

func (CheckCmd) Help() string {
	return examples(
		"can we get Graph and ARM tokens in every customer tenant?",
		"pctoken-helper check --profile contoso --all-tenants --scope graph --scope arm",
	)
}

func (MiCmd) Help() string {
	return examples(
		"run a program built on an Azure SDK with tokens from the helper",
		"pctoken-helper mi exec --profile contoso -- ./inventory-report",
		"serve the endpoint for this shell, in the background",
		"eval \"$(pctoken-helper mi serve --profile contoso &)\"",
	)
}

func (DoctorCmd) Help() string {
	return examples(
		"check every profile and say what to fix",
		"pctoken-helper doctor",
		"one profile, as JSON for a monitoring system",
		"pctoken-helper doctor --profile contoso -o json",
	)
}

func (SetupCmd) Help() string {
	return examples(
		"git against Azure DevOps: see what would change, then change it",
		"pctoken-helper setup git --profile contoso --dry-run",
		"a kubeconfig user becomes the exec plugin with the AKS scope",
		"pctoken-helper setup kubeconfig --profile contoso --context fabrikam-aks",
	)
}

func (CompletionCmd) Help() string {
	return examples(
		"bash, in ~/.bashrc",
		"eval \"$(pctoken-helper completion bash)\"",
		"PowerShell, in $PROFILE",
		"pctoken-helper completion powershell | Out-String | Invoke-Expression",
	)
}

func (ProfileCmd) Help() string {
	return examples(
		"the saved profiles",
		"pctoken-helper profile list",
		"one of them",
		"pctoken-helper profile show contoso",
	)
}
