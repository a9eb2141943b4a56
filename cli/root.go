package cli

import (
	"fmt"

	"github.com/alecthomas/kong"
)

// Root is the command line. Settings resolve flag > environment > profile saved at
// consent > built-in default, so the profile-backed flags have no kong defaults.
type Root struct {
	Globals
	VersionFlag kong.VersionFlag `group:"global" name:"version" short:"V" help:"Print the version and exit."`

	Consent        ConsentCmd        `cmd:"" group:"setup" help:"The interactive step, once per profile: sign in and store the refresh token."`
	Import         ImportCmd         `cmd:"" group:"setup" help:"Adopt a refresh token obtained elsewhere (read from stdin)."`
	Get            GetCmd            `cmd:"" group:"tokens" help:"Print an access token for a scope in a tenant."`
	ExecCredential ExecCredentialCmd `cmd:"" group:"tokens" name:"exec-credential" help:"kubectl / client-go exec credential plugin."`
	GitCredential  GitCredentialCmd  `cmd:"" group:"tokens" name:"git-credential" help:"git credential helper (get, store, erase)."`
	Status         StatusCmd         `cmd:"" group:"care" help:"Show profiles, accounts and cached tokens (never a secret)."`
	Renew          RenewCmd          `cmd:"" group:"care" help:"Redeem stored refresh tokens once so the 90-day inactivity window starts again."`
	Logout         LogoutCmd         `cmd:"" group:"care" help:"Forget a profile: refresh token, stored secret, cached tokens, settings."`
	Tenants        TenantsCmd        `cmd:"" group:"estate" help:"List the customer tenants this partner user can reach (GDAP relationships or Partner Center)."`
	Check          CheckCmd          `cmd:"" group:"estate" help:"Get a token per tenant and scope and classify what fails, with the fix."`
	Az             AzCmd             `cmd:"" group:"tokens" passthrough:"" help:"Stand in for the Azure CLI: account get-access-token, account show, account list, version (the az shim)."`
	Mi             MiCmd             `cmd:"" group:"tokens" help:"A local managed-identity endpoint for Azure SDKs and tools (mi exec, mi serve)."`
	Doctor         DoctorCmd         `cmd:"" group:"care" help:"Check each profile's store, folders, TLS to the authority, clock and a live refresh; say what to fix."`
	Setup          SetupCmd          `cmd:"" group:"setup" help:"Write git's or kubectl's configuration for the helper (setup git, setup kubeconfig)."`
	Completion     CompletionCmd     `cmd:"" group:"setup" help:"Print the shell completion script for bash, zsh, fish or powershell."`
	Profiles       ProfileCmd        `cmd:"" group:"care" name:"profile" help:"List saved profiles, or show one (never a secret)."`
	Version        VersionCmd        `cmd:"" group:"program" help:"Print the version."`
}

// Globals are the settings every command shares.
type Globals struct {
	Profile           string `group:"global" env:"PCTOKEN_PROFILE" placeholder:"NAME" help:"Named set of settings and its refresh token (default: default)."`
	ClientID          string `group:"global" name:"client-id" env:"PCTOKEN_CLIENT_ID" placeholder:"ID" help:"Application (client) id."`
	Tenant            string `group:"global" env:"PCTOKEN_TENANT" placeholder:"T" help:"At consent: the home tenant (GUID, domain or organizations). At get: the target tenant (default: the profile's home tenant). At status: only its cached tokens."`
	Cloud             string `group:"global" env:"PCTOKEN_CLOUD" placeholder:"NAME" help:"public (default), usgov or china."`
	AuthorityHost     string `group:"global" name:"authority-host" env:"PCTOKEN_AUTHORITY_HOST" placeholder:"URL" help:"Login host overriding the cloud's, e.g. https://127.0.0.1:8443 (instance discovery off for non-Microsoft hosts)."`
	ClientCertificate string `group:"global" name:"client-certificate" env:"PCTOKEN_CLIENT_CERTIFICATE" placeholder:"FILE" type:"path" help:"PEM with certificate and private key, instead of a client secret."`
	Store             string `group:"global" env:"PCTOKEN_STORE" placeholder:"NAME" help:"Secure store: auto (default), secret-service, keychain, wincred, kwallet, pass, file, azure-keyvault."`
	StoreDir          string `group:"global" name:"store-dir" env:"PCTOKEN_STORE_DIR" placeholder:"DIR" type:"path" help:"Folder of the file store."`
	KeyvaultSecret    string `group:"global" name:"keyvault-secret" env:"PCTOKEN_KEYVAULT_SECRET" placeholder:"URL" help:"With --store azure-keyvault: the secret identifier https://<vault>.vault.azure.net/secrets/<name> (saved in the profile at consent and import)."`
	KeyvaultAuth      string `group:"global" name:"keyvault-auth" env:"PCTOKEN_KEYVAULT_AUTH" placeholder:"METHOD" help:"How this machine authenticates to the vault: default, managed-identity, workload-identity, environment or azure-cli."`
	RotateAfter       string `group:"global" name:"rotate-after" env:"PCTOKEN_ROTATE_AFTER" placeholder:"D" help:"With --store azure-keyvault: a refresh writes the rotated token back only when the vault's is older than this (default 7d; renew always writes)."`
	CacheDir          string `group:"global" name:"cache-dir" env:"PCTOKEN_CACHE_DIR" placeholder:"DIR" type:"path" help:"Access-token cache (default: under the user cache dir)."`
	ConfigDir         string `group:"global" name:"config-dir" env:"PCTOKEN_CONFIG_DIR" placeholder:"DIR" type:"path" help:"Saved profiles (default: under the user config dir)."`
	Verbose           bool   `group:"global" short:"v" help:"Diagnostics on stderr, secrets redacted (also PCTOKEN_VERBOSE=1)."`
}

// VersionCmd prints the version.
type VersionCmd struct{}

func (VersionCmd) Run(a *App) error {
	_, err := fmt.Fprintln(a.Stdout, versionLine())
	return err
}
