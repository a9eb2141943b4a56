package cli

import (
	"fmt"

	"github.com/alecthomas/kong"
)

// Root is the command line. Settings resolve flag > environment > profile saved at
// consent > built-in default, so the profile-backed flags have no kong defaults.
type Root struct {
	Globals
	VersionFlag kong.VersionFlag `name:"version" short:"V" help:"Print the version and exit."`

	Version        VersionCmd        `cmd:"" help:"Print the version."`
	Consent        ConsentCmd        `cmd:"" help:"The interactive step, once per profile: sign in and store the refresh token."`
	Import         ImportCmd         `cmd:"" help:"Adopt a refresh token obtained elsewhere (read from stdin)."`
	Get            GetCmd            `cmd:"" help:"Print an access token for a scope in a tenant."`
	ExecCredential ExecCredentialCmd `cmd:"" name:"exec-credential" help:"kubectl / client-go exec credential plugin."`
	GitCredential  GitCredentialCmd  `cmd:"" name:"git-credential" help:"git credential helper (get, store, erase)."`
	Status         StatusCmd         `cmd:"" help:"Show profiles, accounts and cached tokens (never a secret)."`
	Renew          RenewCmd          `cmd:"" help:"Redeem stored refresh tokens once so the 90-day inactivity window starts again."`
	Logout         LogoutCmd         `cmd:"" help:"Forget a profile: refresh token, stored secret, cached tokens, settings."`
	Tenants        TenantsCmd        `cmd:"" help:"List the customer tenants this partner user can reach (GDAP relationships or Partner Center)."`
	Check          CheckCmd          `cmd:"" help:"Get a token per tenant and scope and classify what fails, with the fix."`
	Mi             MiCmd             `cmd:"" help:"A local managed-identity endpoint for Azure SDKs and tools (mi exec, mi serve)."`
	Doctor         DoctorCmd         `cmd:"" help:"Check each profile's store, folders, TLS to the authority, clock and a live refresh; say what to fix."`
	Setup          SetupCmd          `cmd:"" help:"Write git's or kubectl's configuration for the helper (setup git, setup kubeconfig)."`
	Completion     CompletionCmd     `cmd:"" help:"Print the shell completion script for bash, zsh, fish or powershell."`
	Profiles       ProfileCmd        `cmd:"" name:"profile" help:"List saved profiles, or show one (never a secret)."`
	Az             AzCmd             `cmd:"" passthrough:"" help:"Stand in for the Azure CLI: account get-access-token, account show, account list, version (the az shim)."`
}

// Globals are the settings every command shares.
type Globals struct {
	Profile           string `env:"PCTOKEN_PROFILE" placeholder:"NAME" help:"Named set of settings and its refresh token (default: default)."`
	ClientID          string `name:"client-id" env:"PCTOKEN_CLIENT_ID" placeholder:"ID" help:"Application (client) id."`
	Tenant            string `env:"PCTOKEN_TENANT" placeholder:"T" help:"At consent: the home tenant (GUID, domain or organizations). At get: the target tenant (default: the profile's home tenant)."`
	Cloud             string `env:"PCTOKEN_CLOUD" placeholder:"NAME" help:"public (default), usgov or china."`
	AuthorityHost     string `name:"authority-host" env:"PCTOKEN_AUTHORITY_HOST" placeholder:"URL" help:"Login host overriding the cloud's, e.g. https://127.0.0.1:8443 (instance discovery off for non-Microsoft hosts)."`
	ClientCertificate string `name:"client-certificate" env:"PCTOKEN_CLIENT_CERTIFICATE" placeholder:"FILE" type:"path" help:"PEM with certificate and private key, instead of a client secret."`
	Store             string `env:"PCTOKEN_STORE" placeholder:"NAME" help:"Secure store: auto (default), secret-service, keychain, wincred, kwallet, pass, file, azure-keyvault."`
	StoreDir          string `name:"store-dir" env:"PCTOKEN_STORE_DIR" placeholder:"DIR" type:"path" help:"Folder of the file store."`
	KeyvaultSecret    string `name:"keyvault-secret" env:"PCTOKEN_KEYVAULT_SECRET" placeholder:"URL" help:"With --store azure-keyvault: the secret identifier https://<vault>.vault.azure.net/secrets/<name> (saved in the profile at consent and import)."`
	KeyvaultAuth      string `name:"keyvault-auth" env:"PCTOKEN_KEYVAULT_AUTH" placeholder:"METHOD" help:"How this machine authenticates to the vault: default, managed-identity, workload-identity, environment or azure-cli."`
	RotateAfter       string `name:"rotate-after" env:"PCTOKEN_ROTATE_AFTER" placeholder:"D" help:"With --store azure-keyvault: a refresh writes the rotated token back only when the vault's is older than this (default 7d; renew always writes)."`
	CacheDir          string `name:"cache-dir" env:"PCTOKEN_CACHE_DIR" placeholder:"DIR" type:"path" help:"Access-token cache (default: under the user cache dir)."`
	ConfigDir         string `name:"config-dir" env:"PCTOKEN_CONFIG_DIR" placeholder:"DIR" type:"path" help:"Saved profiles (default: under the user config dir)."`
	Verbose           bool   `short:"v" help:"Diagnostics on stderr, secrets redacted (also PCTOKEN_VERBOSE=1)."`
}

// VersionCmd prints the version.
type VersionCmd struct{}

func (VersionCmd) Run(a *App) error {
	_, err := fmt.Fprintln(a.Stdout, versionLine())
	return err
}
