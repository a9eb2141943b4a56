package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/pctoken/pctoken-helper/cache"
	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/keyvault"
	"github.com/pctoken/pctoken-helper/profile"
	"github.com/pctoken/pctoken-helper/securestore"
	"github.com/pctoken/pctoken-helper/settings"
)

// storeKeyVault is the --store value of the Key Vault store (docs/keyvault.md).
const storeKeyVault = "azure-keyvault"

// keyVaultSecretURL is the profile's secret identifier: flag > environment > saved.
func (a *App) keyVaultSecretURL(s *settings.Profile) string {
	return firstOf(a.KeyvaultSecret, s.KeyVaultSecret)
}

// minRotateAfter bounds --rotate-after from below: every write is a version Key Vault
// keeps for good (backups fail beyond 500), and a write more often than hourly buys
// nothing, since every token the vault held stays valid.
const minRotateAfter = time.Hour

// parseRotateAfter reads --rotate-after: a Go duration ("168h") or whole days ("7d"),
// at least an hour. "" is the default.
func parseRotateAfter(v string) (time.Duration, error) {
	if v == "" {
		return keyvault.DefaultRotateAfter, nil
	}
	d, err := time.Duration(-1), error(nil)
	if days, ok := strings.CutSuffix(v, "d"); ok {
		var n int
		if n, err = strconv.Atoi(days); err == nil && n <= 3650 {
			d = time.Duration(n) * 24 * time.Hour
		}
	} else {
		d, err = time.ParseDuration(v)
	}
	if err != nil || d < minRotateAfter || d > 3650*24*time.Hour {
		return 0, usageError("invalid --rotate-after %s: want a duration of at least 1h, such as 7d or 36h", settings.QuoteShort(v))
	}
	return d, nil
}

// keyVaultStore opens the Key Vault store of s, once per process and secret. Every
// setting is checked before any request.
func (a *App) keyVaultStore(s *settings.Profile) (*keyvault.Store, error) {
	raw := a.keyVaultSecretURL(s)
	if raw == "" {
		return nil, usageError("--store azure-keyvault needs --keyvault-secret https://<vault>.vault.azure.net/secrets/<name> (or PCTOKEN_KEYVAULT_SECRET)")
	}
	id, err := keyvault.ParseSecretID(raw)
	if err != nil {
		return nil, usageError("%w", err)
	}
	method := firstOf(a.KeyvaultAuth, "default")
	if err := keyvault.ValidAuth(method); err != nil {
		return nil, usageError("%w", err)
	}
	rotateAfter, err := parseRotateAfter(a.RotateAfter)
	if err != nil {
		return nil, err
	}
	c, err := a.openCache()
	if err != nil {
		a.logf("the vault's access token is not cached: %v", err)
		c = nil
	}
	storeID := storeKeyVault + "\x00" + s.Name + "\x00" + id.String()
	a.opened.mu.Lock()
	if st, ok := a.opened.stores[storeID]; ok {
		a.opened.mu.Unlock()
		return st.(*keyvault.Store), nil
	}
	a.opened.mu.Unlock()
	cred, err := keyvault.NewCredential(method, a.Getenv)
	if err != nil {
		return nil, configError("failed to set up --keyvault-auth %s: %w", method, err)
	}
	st, err := keyvault.New(keyvault.Options{
		Secret: id,
		Credential: &keyvault.CachedCredential{Cred: cred, Cache: c, Profile: s.Name, Method: method,
			Who: a.Getenv("AZURE_CLIENT_ID"), Vault: id.VaultURL(), Now: a.Now},
		AuthName:    method,
		RefreshKey:  refreshKey(s.Name),
		RotateAfter: rotateAfter,
		ClientID:    s.ClientID,
		HomeTenant:  firstOf(s.HomeTenant, s.Account.HomeTenantID),
		Logf:        a.logf,
		Lock:        writeLock(c, s.Name, id),
	})
	if err != nil {
		return nil, configError("%w", err)
	}
	a.logf("secure store: %s %s (--keyvault-auth %s, rotate after %s)", storeKeyVault, id, method, rotateAfter)
	a.opened.mu.Lock()
	defer a.opened.mu.Unlock()
	if a.opened.stores == nil {
		a.opened.stores = map[string]securestore.Store{}
	}
	if prev, ok := a.opened.stores[storeID]; ok {
		return prev.(*keyvault.Store), nil
	}
	a.opened.stores[storeID] = st
	return st, nil
}

// writeLock is the cache's cross-process lock on a key of its own per secret, held
// around a rotation's reread and write; nil (the reread alone) without a cache.
func writeLock(c *cache.Cache, profileName string, id keyvault.SecretID) func(context.Context) (func(), error) {
	if c == nil {
		return nil
	}
	k := cache.Key{Profile: profileName, ClientID: "keyvault-write", Authority: id.VaultURL(), Scopes: []string{id.Name}}
	return func(ctx context.Context) (func(), error) { return c.Lock(ctx, k) }
}

// keyVaultConsentRemedy is the hint when the refresh token of a profile in the Key Vault
// store needs consent: one consent into the vault, on any machine, heals every machine
// (each rereads the vault). "" for other profiles and failures.
func (a *App) keyVaultConsentRemedy(err error, name string) string {
	var e *failure.Error
	if failure.KindOf(err) != failure.ConsentNeeded || (errors.As(err, &e) && e.AADSTS == "50020") {
		return ""
	}
	a.opened.mu.Lock()
	s, ok := a.opened.profiles[name]
	a.opened.mu.Unlock()
	if !ok || s.Store != storeKeyVault {
		return ""
	}
	return fmt.Sprintf("consent again once, on any machine, into the vault (every machine recovers on its next refresh): pctoken-helper consent --profile %s --store azure-keyvault --keyvault-secret %s", name, a.keyVaultSecretURL(s))
}

// importedToken is the refresh token import adopts: the line on stdin, or, with the
// Key Vault store and nothing on stdin (or a terminal), the vault's own token, which
// adopted reports so that it is left in the vault as it is.
func (a *App) importedToken(ctx context.Context, s *settings.Profile) (rt string, adopted bool, err error) {
	if s.Store != storeKeyVault {
		rt, err = readSecretLine(a.Stdin, "refresh token")
		return rt, false, err
	}
	if !isTerminal(a.Stdin) {
		rt, err = readSecretLine(a.Stdin, "refresh token")
		if err == nil {
			return rt, false, nil
		}
		if failure.KindOf(err) != failure.Usage || !strings.Contains(err.Error(), "no refresh token") {
			return "", false, err
		}
	}
	st, err := a.keyVaultStore(s)
	if err != nil {
		return "", false, err
	}
	rt, err = st.GetContext(ctx, refreshKey(s.Name))
	if err != nil {
		return "", false, err
	}
	fmt.Fprintf(a.Stderr, "Adopting the refresh token in %s.\n", a.keyVaultSecretURL(s))
	return rt, true, nil
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// deleteKeyVaultSecret is logout --delete-secret.
func (a *App) deleteKeyVaultSecret(s *settings.Profile) error {
	if s.Store != storeKeyVault {
		return usageError("--delete-secret is for profiles in the azure-keyvault store; profile %s uses %s", s.Name, orDefault(s.Store, "auto"))
	}
	st, err := a.keyVaultStore(s)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.Delete(ctx); err != nil {
		return err
	}
	id, _ := keyvault.ParseSecretID(a.keyVaultSecretURL(s))
	fmt.Fprintf(a.Stderr, "Deleted %s (recoverable: az keyvault secret recover --vault-name %s --name %s).\n", id, id.VaultName(), id.Name)
	return nil
}

// kvStatus is what status shows of a profile's vault secret, never its value.
type kvStatus struct {
	Secret    string     `json:"secret"`
	Version   string     `json:"version,omitempty"`
	Created   *time.Time `json:"created,omitempty"`
	WrittenBy string     `json:"written_by,omitempty"`
	Reason    string     `json:"reason,omitempty"`
	DaysLeft  *int       `json:"days_left,omitempty"`
	Error     string     `json:"error,omitempty"`
}

// keyVaultStatus reads the vault's latest version of a saved profile's secret; nil for
// a profile in another store. A failure is reported in the row, not as the command's.
func (a *App) keyVaultStatus(p profile.Profile) *kvStatus {
	s, err := a.settingsFor(p.Name)
	if err != nil || s.Store != storeKeyVault {
		return nil
	}
	out := &kvStatus{Secret: a.keyVaultSecretURL(s)}
	st, err := a.keyVaultStore(s)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var in keyvault.Info
		if in, err = st.Describe(ctx); err == nil {
			out.Version, out.WrittenBy, out.Reason = in.Version, in.WrittenBy, in.Reason
			out.Created, out.DaysLeft = &in.Created, &in.DaysLeft
			return out
		}
	}
	out.Error = err.Error()
	return out
}

func writeKeyVaultStatus(tw *tabwriter.Writer, k *kvStatus, now time.Time) {
	if k == nil {
		return
	}
	fmt.Fprintf(tw, "key vault secret\t%s\n", k.Secret)
	if k.Error != "" {
		fmt.Fprintf(tw, "key vault\tunreadable: %s\n", k.Error)
		return
	}
	by := ""
	if k.WrittenBy != "" {
		by = " by " + k.WrittenBy
	}
	if k.Reason != "" {
		by += " (" + k.Reason + ")"
	}
	fmt.Fprintf(tw, "key vault version\t%s, written %s%s, %d days left\n", k.Version, ago(now, *k.Created), by, *k.DaysLeft)
}
