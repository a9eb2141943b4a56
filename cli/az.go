package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/protocol"
	"github.com/pctoken/pctoken-helper/settings"
)

// AzCmd stands in for the Azure CLI for tools that authenticate through it
// (azidentity's AzureCLICredential, go-azure-sdk's Azure CLI authorizer and so
// Terraform's azurerm provider): the shim `exec pctoken-helper az "$@"` saved as az.
// Its arguments are az's, so kong passes them through unparsed.
type AzCmd struct {
	Args []string `arg:"" optional:"" help:"The az command line: account get-access-token, account show, account list or version, with az's flags."`
}

// azCloud is what az calls a cloud and the resource it asks for by default.
type azCloud struct{ name, resource string }

var azClouds = map[string]azCloud{
	"public": {"AzureCloud", "https://management.core.windows.net/"},
	"usgov":  {"AzureUSGovernment", "https://management.core.usgovcloudapi.net/"},
	"china":  {"AzureChinaCloud", "https://management.core.chinacloudapi.cn/"},
}

// azSubscriptionVariables name the default subscription when --subscription does not:
// the Azure SDKs' and azd's variable, then Terraform's.
var azSubscriptionVariables = []string{"AZURE_SUBSCRIPTION_ID", "ARM_SUBSCRIPTION_ID"}

// azTokenFlags are get's defaults: a cached token valid 5 more minutes is served, and
// the whole command is bounded.
var azTokenFlags = TokenFlags{MinValidity: 5 * time.Minute, Timeout: 30 * time.Second}

// azShimVariable marks the processes `pctoken-helper az` starts. The Key Vault store
// may authenticate with az (--keyvault-auth azure-cli, or default's chain); with the
// shim first on PATH that az is the helper again, which would need the vault again:
// the nested run refuses instead of starting one more.
const azShimVariable = "PCTOKEN_AZ_SHIM"

func (c *AzCmd) Run(ctx context.Context, a *App) error {
	if a.Getenv(azShimVariable) != "" {
		return a.azFail(&failure.Error{Kind: failure.Configuration,
			Message: "the az shim was run by pctoken-helper az itself: the Key Vault store authenticates with az, and az is the shim",
			Remedy:  "use --keyvault-auth managed-identity, workload-identity or environment, or put the shim on PATH only for the tool that needs it"})
	}
	// Every process started from here on (azidentity's az, azd or pwsh) inherits it.
	if err := os.Setenv(azShimVariable, "1"); err != nil {
		return a.azFail(failure.Errorf(failure.Unexpected, "failed to mark the az shim's child processes: %w", err))
	}
	defer os.Unsetenv(azShimVariable)
	call, err := protocol.ParseAzArgs(c.Args)
	if err != nil {
		return a.azFail(&failure.Error{Kind: failure.Usage, Message: err.Error(), Err: err, Remedy: "pctoken-helper az --help"})
	}
	if call.Help {
		_, err := fmt.Fprint(a.Stdout, azHelp())
		return err
	}
	var doc []byte
	switch call.Command {
	case protocol.AzVersion:
		doc, err = protocol.AzVersionJSON(version())
	case protocol.AzAccountShow, protocol.AzAccountList:
		var accounts []protocol.AzAccount
		if accounts, err = a.azAccounts(call.Subscription); err == nil {
			if call.Command == protocol.AzAccountShow {
				doc, err = protocol.AzAccountJSON(accounts[0])
			} else {
				doc, err = protocol.AzAccountListJSON(accounts)
			}
		}
	case protocol.AzGetAccessToken:
		doc, err = a.azToken(ctx, call)
	}
	if err == nil {
		var out bytes.Buffer
		if err = protocol.WriteAzResult(&out, doc, call.Output, call.Query); err == nil {
			_, err = a.Stdout.Write(out.Bytes())
			return err
		}
		if errors.Is(err, protocol.ErrAzUnanswered) {
			err = &failure.Error{Kind: failure.Usage, Message: err.Error(), Err: err, Remedy: "pctoken-helper az --help"}
		}
	}
	return a.azFail(err)
}

// azFail shows err the way az shows its errors, "ERROR: ..." on stderr (tools that
// relay az's stderr, such as azidentity, pass it on), with the command that fixes it
// on the next line; the exit code is the contract's.
func (a *App) azFail(err error) error {
	fmt.Fprintf(a.Stderr, "ERROR: %s\n", shown(err.Error()))
	if r := a.remedy(err); r != "" {
		fmt.Fprintf(a.Stderr, "hint: %s\n", shown(r))
	}
	return silent{exitCode(err)}
}

// azProfile resolves the profile and the tenant az would be signed in to: the target
// tenant of get (--tenant, PCTOKEN_TENANT, else the profile's home tenant).
func (a *App) azProfile(tenant string, scopes []string) (*settings.Profile, string, error) {
	r, s, err := a.tokenRequest("", tenant, scopes, azTokenFlags)
	if err != nil {
		return nil, "", err
	}
	if a.nothingToRedeem(s) {
		return nil, "", a.missingProfile(s.Name)
	}
	t := r.Tenant
	if settings.IsMultiTenant(t) {
		t = s.Account.HomeTenantID
	}
	if t == "" {
		return nil, "", &failure.Error{Kind: failure.Usage, Profile: s.Name,
			Message: "az account show needs the tenant, and profile " + s.Name + " has no home tenant saved",
			Remedy:  "set PCTOKEN_TENANT to the tenant id"}
	}
	return s, t, nil
}

// azAccounts are the accounts az account show and list print: one per subscription
// named by --subscription, AZURE_SUBSCRIPTION_ID or ARM_SUBSCRIPTION_ID (the first is
// the default), all in the target tenant; with none, az's tenant-level account, whose
// id is the tenant id.
func (a *App) azAccounts(subscription string) ([]protocol.AzAccount, error) {
	s, tenant, err := a.azProfile("", nil)
	if err != nil {
		return nil, err
	}
	type named struct{ id, from string }
	candidates := []named{{subscription, "--subscription"}}
	for _, v := range azSubscriptionVariables {
		candidates = append(candidates, named{a.Getenv(v), v})
	}
	var accounts []protocol.AzAccount
	seen := map[string]bool{}
	for _, c := range candidates {
		id := strings.ToLower(strings.TrimSpace(c.id))
		if id == "" || seen[id] {
			continue
		}
		if !settings.IsGUID(id) {
			return nil, &failure.Error{Kind: failure.Usage, Message: fmt.Sprintf("%s %s: give the subscription id (a GUID); pctoken-helper knows no subscription names", c.from, settings.QuoteShort(c.id))}
		}
		seen[id] = true
		accounts = append(accounts, a.azAccount(s, tenant, id))
	}
	if len(accounts) == 0 {
		accounts = append(accounts, a.azAccount(s, tenant, ""))
	}
	accounts[0].IsDefault = true
	return accounts, nil
}

func (a *App) azAccount(s *settings.Profile, tenant, subscription string) protocol.AzAccount {
	return protocol.AzAccount{
		EnvironmentName: azClouds[s.Login.Name].name,
		SubscriptionID:  subscription,
		TenantID:        tenant,
		User:            s.Account.Username,
	}
}

// azToken answers az account get-access-token. The scope is --scope, else
// --resource + "/.default" (a trailing slash kept, as az keeps it), else az's default
// resource of the cloud. --subscription picks a tenant in az; here the tenant is the
// one account show names, so it changes nothing.
func (a *App) azToken(ctx context.Context, call protocol.AzCall) ([]byte, error) {
	scopes := call.Scopes
	if len(scopes) == 0 && call.Resource != "" {
		scopes = []string{call.Resource + "/.default"}
	}
	if len(scopes) == 0 {
		s, err := a.settingsFor("")
		if err != nil {
			return nil, failure.WithProfile(err, a.profileName(""))
		}
		scopes = []string{azClouds[s.Login.Name].resource + "/.default"}
	}
	r, _, err := a.tokenRequest("", call.Tenant, scopes, azTokenFlags)
	if err != nil {
		return nil, err
	}
	t, err := a.fetch(ctx, r, azTokenFlags.Timeout)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := protocol.WriteAz(&out, wireToken(t, r.Profile), time.Local); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// azHelp is az --help's answer: what is answered, and how.
func azHelp() string {
	var b strings.Builder
	b.WriteString("Usage: pctoken-helper az <az command line>\n\n")
	b.WriteString("Answers, in the Azure CLI's JSON shapes, what tools that authenticate through az\n")
	b.WriteString("run; save `exec pctoken-helper az \"$@\"` as az first on their PATH.\n\n")
	b.WriteString("Commands:\n")
	for _, cmd := range protocol.AzCommands {
		fmt.Fprintf(&b, "  az %s\n", cmd)
		for _, f := range protocol.AzFlagNames(cmd) {
			names := strings.Split(f, "/")
			fmt.Fprintf(&b, "      %s\n", strings.Join(names, ", "))
		}
	}
	b.WriteString("\nThe profile, tenant and stores come from PCTOKEN_PROFILE, PCTOKEN_TENANT and the\n")
	b.WriteString("other settings, or from global flags before az (pctoken-helper --profile P az ...).\n")
	b.WriteString("The default subscription of account show is --subscription, else\n")
	b.WriteString("AZURE_SUBSCRIPTION_ID, else ARM_SUBSCRIPTION_ID; with none, az's tenant-level account.\n\n")
	b.WriteString(AzCmd{}.Help())
	return b.String()
}

func (AzCmd) Help() string {
	return examples(
		"what a tool runs through the shim: an ARM token for a customer tenant",
		"pctoken-helper --profile contoso az account get-access-token --resource https://management.core.windows.net/ --tenant fabrikam.onmicrosoft.com",
		"the account Terraform's azurerm provider reads first",
		"pctoken-helper --profile contoso az account show",
	)
}
