package cli

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/pctoken/pctoken-helper/cache"
	"github.com/pctoken/pctoken-helper/cloud"
	"github.com/pctoken/pctoken-helper/entra"
	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/idphttp"
	"github.com/pctoken/pctoken-helper/profile"
	"github.com/pctoken/pctoken-helper/securestore"
	"github.com/pctoken/pctoken-helper/settings"
	"github.com/pctoken/pctoken-helper/token"
)

// App is one run of the helper: the environment, the global settings, and what has
// been opened so far. Everything is opened on first use, so a cache hit reads one
// profile and one cache file and nothing else.
type App struct {
	Env
	*Globals

	// Interactive is false where nobody may be asked anything (kubectl with
	// interactive false): the file store passphrase is then never prompted for.
	NonInteractive bool

	mu       sync.Mutex
	profiles map[string]*profileSettings
	stores   map[string]securestore.Store
	sessions map[string]*token.Session
	cache    *cache.Cache
	current  string // profile of the failing operation, for the remedy
}

// profileSettings are a profile's effective settings: flag > environment > saved > default.
type profileSettings struct {
	profile.Profile
	saved bool

	cloud         cloud.Cloud
	authorityHost string
}

func (a *App) logf(format string, args ...any) {
	if a.Verbose {
		fmt.Fprintf(a.Stderr, "pctoken-helper: "+format+"\n", args...)
	}
}

func (a *App) warnf(format string, args ...any) {
	fmt.Fprintf(a.Stderr, "warning: "+format+"\n", args...)
}

func (a *App) profileName(explicit string) string {
	switch {
	case explicit != "":
		return explicit
	case a.Profile != "":
		return a.Profile
	}
	return profile.Default
}

func (a *App) configDir() (string, error) {
	d, err := settings.Dir(a.ConfigDir, os.UserConfigDir)
	if err != nil {
		return "", configError("no user config dir (pass --config-dir): %w", err)
	}
	return d, nil
}

func (a *App) cacheDir() (string, error) {
	d, err := settings.Dir(a.CacheDir, os.UserCacheDir)
	if err != nil {
		return "", configError("no user cache dir (pass --cache-dir): %w", err)
	}
	return d, nil
}

func (a *App) profileDir() (profile.Dir, error) {
	d, err := a.configDir()
	return profile.Dir(filepath.Join(d, "profiles")), err
}

// settingsFor resolves the settings of the named profile ("" = the default one).
func (a *App) settingsFor(name string) (*profileSettings, error) {
	name = a.profileName(name)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.current = name
	if s, ok := a.profiles[name]; ok {
		return s, nil
	}
	if err := profile.ValidName(name); err != nil {
		return nil, usageError("%w", err)
	}
	dir, err := a.profileDir()
	if err != nil {
		return nil, err
	}
	p, err := dir.Load(name)
	saved := err == nil
	if err != nil && !errors.Is(err, profile.ErrNotFound) {
		return nil, configError("%w", err)
	}
	s := &profileSettings{Profile: p, saved: saved}
	s.Name = name
	override(&s.ClientID, a.ClientID)
	override(&s.Cloud, a.Cloud)
	override(&s.AuthorityHost, a.AuthorityHost)
	override(&s.Store, a.Store)
	override(&s.StoreDir, a.StoreDir)
	override(&s.ClientCertificate, a.ClientCertificate)
	if s.cloud, err = cloud.Lookup(s.Cloud); err != nil {
		return nil, usageError("%w", err)
	}
	s.authorityHost = s.cloud.LoginHost
	if s.AuthorityHost != "" {
		if s.authorityHost, err = cloud.NormalizeAuthorityHost(s.AuthorityHost); err != nil {
			return nil, usageError("%w", err)
		}
	}
	if a.profiles == nil {
		a.profiles = map[string]*profileSettings{}
	}
	a.profiles[name] = s
	return s, nil
}

func override(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

// targetTenant is the tenant a get is for: explicit, else --tenant, else home.
func (a *App) targetTenant(s *profileSettings, explicit string) string {
	switch {
	case explicit != "":
		return explicit
	case a.Tenant != "":
		return a.Tenant
	}
	return s.HomeTenant
}

// scopes resolves aliases; with none given, the first scope consented to, else
// Partner Center's.
func scopes(s *profileSettings, given []string) []string {
	return settings.Scopes(s.cloud, s.Scopes, given)
}

// resourceOf is the resource a scope names: what precedes the last "/" in
// "https://graph.microsoft.com/.default" or "<app id>/.default". OIDC scopes and bare
// permissions such as "User.Read" give "" and are left out of the checks below.
func resourceOf(scope string) string {
	if i := strings.LastIndex(scope, "/"); i > 0 {
		return strings.ToLower(strings.TrimRight(scope[:i], "/"))
	}
	return ""
}

// oneResource fails when scopes name two resources: Entra issues a token for the first
// one only, and MSAL then reports the others as declined.
func oneResource(scopes []string) error {
	first := ""
	for _, sc := range scopes {
		switch r := resourceOf(sc); {
		case r == "":
		case first == "":
			first = r
		case r != first:
			return usageError("a token is for one resource, but %s and %s were asked for together: ask for each in its own request", first, r)
		}
	}
	return nil
}

// firstResource keeps the scopes of the first resource named (and those naming none).
func firstResource(scopes []string) []string {
	first, out := "", []string{}
	for _, sc := range scopes {
		r := resourceOf(sc)
		if r != "" && first == "" {
			first = r
		}
		if r == "" || r == first {
			out = append(out, sc)
		}
	}
	return out
}

func (a *App) openCache() (*cache.Cache, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cache != nil {
		return a.cache, nil
	}
	dir, err := a.cacheDir()
	if err != nil {
		return nil, err
	}
	// The cache is the folder itself, so a --cache-dir others can write to is refused.
	c, err := cache.Open(dir)
	if err != nil {
		return nil, configError("%w", err)
	}
	c.Logf = a.logf
	a.cache = c
	return c, nil
}

func refreshKey(profileName string) string { return "refresh-token:" + profileName }
func secretKey(profileName string) string  { return "client-secret:" + profileName }

// secureStore opens the store of s (once per process and store).
func (a *App) secureStore(s *profileSettings) (securestore.Store, string, error) {
	if s.Store == storeKeyVault {
		st, err := a.keyVaultStore(s)
		if err != nil {
			return nil, "", err
		}
		return st, storeKeyVault, nil
	}
	dir := s.StoreDir
	if dir == "" {
		cd, err := a.configDir()
		if err != nil {
			return nil, "", err
		}
		dir = filepath.Join(cd, "store")
	}
	backend := s.Store
	if backend == "" {
		backend = "auto"
	}
	id := backend + "\x00" + dir
	a.mu.Lock()
	defer a.mu.Unlock()
	if st, ok := a.stores[id]; ok {
		return st, backend, nil
	}
	st, used, err := securestore.Open(securestore.Config{
		Backend:    backend,
		FileDir:    dir,
		Passphrase: a.Getenv("PCTOKEN_FILE_PASSPHRASE"),
		Prompt:     !a.NonInteractive,
		TTY:        a.TTY,
	})
	if err != nil {
		return nil, "", storeError(err)
	}
	a.logf("secure store: %s", used)
	if a.stores == nil {
		a.stores = map[string]securestore.Store{}
	}
	a.stores[id] = st
	return st, used, nil
}

func storeError(err error) error { return failure.Wrap(failure.Configuration, err) }

// refreshTokenStore is where the profile's refresh token lives: the variable in CI
// mode, else the secure store.
func (a *App) refreshTokenStore(s *profileSettings) (securestore.Store, error) {
	if rt := a.Getenv("PCTOKEN_REFRESH_TOKEN"); rt != "" {
		return securestore.NewEnvStore(refreshKey(s.Name), rt, a.Stderr), nil
	}
	st, _, err := a.secureStore(s)
	return st, err
}

// credential is the app's secret or certificate; nil for a public client.
func (a *App) credential(s *profileSettings) (*entra.Credential, error) {
	if secret := a.Getenv("PCTOKEN_CLIENT_SECRET"); secret != "" {
		return &entra.Credential{Secret: secret}, nil
	}
	if s.ClientCertificate != "" {
		return entra.LoadCertificate(s.ClientCertificate)
	}
	if s.StoredSecret {
		st, _, err := a.secureStore(s)
		if err != nil {
			return nil, err
		}
		secret, err := st.Get(secretKey(s.Name))
		if err != nil {
			return nil, configError("the client secret of profile %s is missing from the secure store: %w", s.Name, err)
		}
		return &entra.Credential{Secret: secret}, nil
	}
	return nil, nil
}

func (a *App) entraApp(s *profileSettings, cred *entra.Credential, homeTenant string) (entra.App, error) {
	if s.ClientID == "" {
		return entra.App{}, &failure.Error{Kind: failure.ConsentNeeded, Message: fmt.Sprintf("profile %s has no client id: it was never consented", s.Name)}
	}
	dir, err := a.cacheDir()
	if err != nil {
		return entra.App{}, err
	}
	return entra.App{
		ClientID:          s.ClientID,
		AuthorityHost:     s.authorityHost,
		HomeTenant:        homeTenant,
		Credential:        cred,
		HTTPClient:        idphttp.NewClient(filepath.Join(dir, "metadata"), idphttp.RetryOptions{Logf: a.logf}, a.logf),
		InstanceDiscovery: cloud.IsMicrosoftHost(s.authorityHost),
	}, nil
}

// session returns what redeeming s's refresh token needs, opened once per profile.
func (a *App) session(s *profileSettings) (*token.Session, error) {
	a.mu.Lock()
	if ss, ok := a.sessions[s.Name]; ok {
		a.mu.Unlock()
		return ss, nil
	}
	a.mu.Unlock()
	if !s.saved && a.Getenv("PCTOKEN_REFRESH_TOKEN") == "" && s.Store != storeKeyVault {
		return nil, &failure.Error{Kind: failure.ConsentNeeded, Message: fmt.Sprintf("profile %s has no refresh token", s.Name)}
	}
	cred, err := a.credential(s)
	if err != nil {
		return nil, err
	}
	home := s.HomeTenant
	if home == "" {
		home = "organizations"
	}
	app, err := a.entraApp(s, cred, home)
	if err != nil {
		return nil, err
	}
	st, err := a.refreshTokenStore(s)
	if err != nil {
		return nil, err
	}
	ss := &token.Session{
		App:     app,
		Account: entra.Account{HomeAccountID: s.Account.HomeAccountID, Username: s.Account.Username, HomeTenantID: s.Account.HomeTenantID},
		RefreshToken: &token.RefreshToken{
			Store:   st,
			Key:     refreshKey(s.Name),
			Profile: s.Name,
			Saved:   func() error { return a.recordRotation(s) },
		},
		Warn: a.warnf,
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sessions == nil {
		a.sessions = map[string]*token.Session{}
	}
	if prev, ok := a.sessions[s.Name]; ok {
		return prev, nil
	}
	a.sessions[s.Name] = ss
	return ss, nil
}

// recordRotation notes in the saved profile when its refresh token was last rotated,
// which is when its 90-day inactivity window started again.
func (a *App) recordRotation(s *profileSettings) error {
	if !s.saved {
		return nil
	}
	dir, err := a.profileDir()
	if err != nil {
		return err
	}
	p, err := dir.Load(s.Name)
	if err != nil {
		return err
	}
	p.RotatedAt = a.Now().UTC()
	return dir.Save(p)
}

// remedy is the command that fixes err, for the hint line.
func (a *App) remedy(err error) string {
	name := a.current
	if name == "" {
		name = a.profileName("")
	}
	if r := a.keyVaultConsentRemedy(err, name); r != "" {
		return r
	}
	return remedyFor(err, name)
}

func remedyFor(err error, profileName string) string {
	if errors.Is(err, securestore.ErrNoPassphrase) {
		return "set PCTOKEN_FILE_PASSPHRASE, or run the command in a terminal"
	}
	var unknownCA x509.UnknownAuthorityError
	if errors.As(err, &unknownCA) {
		return "trust the CA that signed the identity provider's certificate: set SSL_CERT_FILE to its PEM file, or add it to the system store"
	}
	if errors.Is(err, securestore.ErrWrongPassphrase) {
		return "set PCTOKEN_FILE_PASSPHRASE to the passphrase the file store was created with"
	}
	if r := failure.RemedyOf(err); r != "" {
		return r // the failing layer knew the command
	}
	var e *failure.Error
	errors.As(err, &e)
	switch failure.KindOf(err) {
	case failure.ConsentNeeded:
		if e != nil && e.AADSTS == "50020" {
			// Consenting again would not help: the account has no access in that tenant.
			return "check --tenant: the signed-in account needs access there (a GDAP relationship with a role, or a guest account)"
		}
		return "pctoken-helper consent --profile " + profileName
	case failure.Transient:
		return "try again later; add -v to see each attempt"
	case failure.Usage:
		return "pctoken-helper --help"
	case failure.Configuration:
		if e != nil {
			switch e.AADSTS {
			case "7000215", "7000222", "7000218":
				return "set PCTOKEN_CLIENT_SECRET to a valid secret, or store one: pctoken-helper consent --profile " + profileName + " --client-secret-stdin"
			case "700025":
				return "unset PCTOKEN_CLIENT_SECRET and drop --client-certificate"
			case "700027":
				return "register the certificate on the app, or pass the right one with --client-certificate"
			case "700016", "700007":
				return "check --client-id, or consent again: pctoken-helper consent --profile " + profileName + " --client-id ID"
			case "90002":
				return "check --tenant (a tenant id or verified domain)"
			}
		}
		return "pctoken-helper status"
	}
	return ""
}
