package cli

import (
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/pctoken/pctoken-helper/cache"
	"github.com/pctoken/pctoken-helper/cloud"
	"github.com/pctoken/pctoken-helper/entra"
	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/idphttp"
	"github.com/pctoken/pctoken-helper/internal/safefs"
	"github.com/pctoken/pctoken-helper/profile"
	"github.com/pctoken/pctoken-helper/securestore"
	"github.com/pctoken/pctoken-helper/settings"
	"github.com/pctoken/pctoken-helper/token"
)

// App is one run of the helper: the environment, the global settings, and what has
// been opened so far (opened). Everything is opened on first use, so a cache hit reads
// one profile and one cache file and nothing else.
type App struct {
	Env
	*Globals

	// NonInteractive is true where nobody may be asked anything (kubectl with
	// interactive false, git): the file store passphrase is then never prompted for.
	NonInteractive bool

	opened opened
}

// opened is what a run has opened, once each: profiles' settings, secure stores,
// refresh-token sessions and the cache. A --request batch shares them among its
// requests.
type opened struct {
	mu       sync.Mutex
	profiles map[string]*settings.Profile
	stores   map[string]securestore.Store
	sessions map[string]*token.Session
	cache    *cache.Cache
}

func (a *App) logf(format string, args ...any) {
	if a.Verbose {
		fmt.Fprintf(a.Stderr, "pctoken-helper: %s\n", shown(fmt.Sprintf(format, args...)))
	}
}

func (a *App) warnf(format string, args ...any) {
	fmt.Fprintf(a.Stderr, "warning: %s\n", shown(fmt.Sprintf(format, args...)))
}

// given is what the command line and the environment set, for settings' resolver.
func (a *App) given() settings.Given {
	g := a.Globals
	return settings.Given{
		Profile:           g.Profile,
		ClientID:          g.ClientID,
		Tenant:            g.Tenant,
		Cloud:             g.Cloud,
		AuthorityHost:     g.AuthorityHost,
		ClientCertificate: g.ClientCertificate,
		Store:             g.Store,
		StoreDir:          g.StoreDir,
		CacheDir:          g.CacheDir,
		ConfigDir:         g.ConfigDir,
	}
}

func (a *App) profileName(explicit string) string { return a.given().ProfileName(explicit) }

// settingsFor resolves the settings of the named profile ("" = the given or default
// one), once per run.
func (a *App) settingsFor(name string) (*settings.Profile, error) {
	name = a.profileName(name)
	o := &a.opened
	o.mu.Lock()
	defer o.mu.Unlock()
	if s, ok := o.profiles[name]; ok {
		return s, nil
	}
	g := a.given()
	s, err := settings.ResolveProfile(g, name, settings.LoadFrom(g))
	if err != nil {
		return nil, err
	}
	if o.profiles == nil {
		o.profiles = map[string]*settings.Profile{}
	}
	o.profiles[name] = &s
	return &s, nil
}

// forget drops a profile's resolved settings after they were saved anew.
func (a *App) forget(name string) {
	a.opened.mu.Lock()
	delete(a.opened.profiles, name)
	a.opened.mu.Unlock()
}

func (a *App) openCache() (*cache.Cache, error) {
	o := &a.opened
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cache != nil {
		return o.cache, nil
	}
	dir, err := a.given().CacheFolder()
	if err != nil {
		return nil, err
	}
	// The cache is the folder itself, so a --cache-dir others can write to is refused.
	c, err := cache.Open(dir)
	if err != nil {
		return nil, configError("%w", err)
	}
	c.Logf = a.logf
	o.cache = c
	return c, nil
}

func refreshKey(profileName string) string { return "refresh-token:" + profileName }
func secretKey(profileName string) string  { return "client-secret:" + profileName }

// secureStore opens the store of s (once per process and store).
func (a *App) secureStore(s *settings.Profile) (securestore.Store, string, error) {
	if s.Store == storeKeyVault {
		st, err := a.keyVaultStore(s)
		if err != nil {
			return nil, "", err
		}
		return st, storeKeyVault, nil
	}
	dir := s.StoreDir
	if dir == "" {
		cd, err := a.given().ConfigFolder()
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
	o := &a.opened
	o.mu.Lock()
	defer o.mu.Unlock()
	if st, ok := o.stores[id]; ok {
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
	if o.stores == nil {
		o.stores = map[string]securestore.Store{}
	}
	o.stores[id] = st
	return st, used, nil
}

func storeError(err error) error { return failure.Wrap(failure.Configuration, err) }

// refreshTokenStore is where the profile's refresh token lives: the variable in CI
// mode, else the secure store.
func (a *App) refreshTokenStore(s *settings.Profile) (securestore.Store, error) {
	if rt := a.Getenv("PCTOKEN_REFRESH_TOKEN"); rt != "" {
		return securestore.NewEnvStore(refreshKey(s.Name), rt, a.Stderr, a.ciWarnedBefore(rt)), nil
	}
	st, _, err := a.secureStore(s)
	return st, err
}

// credential is the app's secret or certificate; nil for a public client.
func (a *App) credential(s *settings.Profile) (*entra.Credential, error) {
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

func (a *App) entraApp(s *settings.Profile, cred *entra.Credential, homeTenant string) (entra.App, error) {
	if s.ClientID == "" {
		return entra.App{}, &failure.Error{Kind: failure.ConsentNeeded, Message: fmt.Sprintf("profile %s has no client id: it was never consented", s.Name)}
	}
	dir, err := a.given().CacheFolder()
	if err != nil {
		return entra.App{}, err
	}
	return entra.App{
		ClientID:          s.ClientID,
		AuthorityHost:     s.Authority,
		HomeTenant:        homeTenant,
		Credential:        cred,
		HTTPClient:        idphttp.NewClient(filepath.Join(dir, "metadata"), idphttp.RetryOptions{Logf: a.logf}, a.logf),
		InstanceDiscovery: cloud.IsMicrosoftHost(s.Authority),
	}, nil
}

// session returns what redeeming s's refresh token needs, opened once per profile.
func (a *App) session(s *settings.Profile) (*token.Session, error) {
	o := &a.opened
	o.mu.Lock()
	if ss, ok := o.sessions[s.Name]; ok {
		o.mu.Unlock()
		return ss, nil
	}
	o.mu.Unlock()
	if a.nothingToRedeem(s) {
		return nil, a.missingProfile(s.Name)
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
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.sessions == nil {
		o.sessions = map[string]*token.Session{}
	}
	if prev, ok := o.sessions[s.Name]; ok {
		return prev, nil
	}
	o.sessions[s.Name] = ss
	return ss, nil
}

// nothingToRedeem tells whether s has no refresh token anywhere: never saved by
// consent or import, not CI mode, not a vault that may hold one.
func (a *App) nothingToRedeem(s *settings.Profile) bool {
	return !s.Saved && a.Getenv("PCTOKEN_REFRESH_TOKEN") == "" && s.Store != storeKeyVault
}

// missingProfile is the error for a profile that was never saved: a typo of a saved
// one (usage, naming the nearest and listing them), or, on a machine with none, the
// consent to run.
func (a *App) missingProfile(name string) error {
	var saved []string
	if dir, err := a.given().Profiles(); err == nil {
		saved, _ = dir.List()
	}
	return unknownProfile(name, saved, profile.ErrNotFound)
}

// recordRotation notes in the saved profile when its refresh token was last rotated,
// which is when its 90-day inactivity window started again.
func (a *App) recordRotation(s *settings.Profile) error {
	if !s.Saved {
		return nil
	}
	dir, err := a.given().Profiles()
	if err != nil {
		return err
	}
	p, err := dir.Load(s.Name)
	if err != nil {
		return err
	}
	p.RotatedAt = a.Now().UTC()
	p.Refused = nil
	return dir.Save(p)
}

// deadRefreshToken are the AADSTS codes that mean the refresh token itself is
// unusable, in every tenant: expired unused, revoked, or its code expired.
var deadRefreshToken = map[string]bool{"700082": true, "50173": true, "70008": true}

// homeOnlyRefusals mean the same when the home tenant says them (MFA or sign-in
// frequency); a customer tenant's Conditional Access says nothing about the token.
var homeOnlyRefusals = map[string]bool{"50078": true, "50079": true, "70043": true, "50076": true}

// recordRefusal notes in the saved profile that the identity provider refused its
// refresh token, so that status and renew's schedulers see it needs consent.
func (a *App) recordRefusal(s *settings.Profile, tenant string, err error) {
	var e *failure.Error
	if !s.Saved || !errors.As(err, &e) || e.Kind != failure.ConsentNeeded || e.AADSTS == "" {
		return
	}
	home := tenant == "organizations" || tenant == s.HomeTenant || tenant == s.Account.HomeTenantID
	if !deadRefreshToken[e.AADSTS] && !(home && homeOnlyRefusals[e.AADSTS]) {
		return
	}
	dir, derr := a.given().Profiles()
	if derr != nil {
		return
	}
	p, lerr := dir.Load(s.Name)
	if lerr != nil {
		return
	}
	p.Refused = &profile.Refusal{AADSTS: e.AADSTS, Reason: e.Message, At: a.Now().UTC()}
	if serr := dir.Save(p); serr != nil {
		a.logf("could not record the refusal in profile %s: %v", s.Name, serr)
	}
}

// remedy is the command that fixes err, for the hint line: for the profile the error
// names, else the run's.
func (a *App) remedy(err error) string {
	name := failure.ProfileOf(err)
	if name == "" {
		name = a.profileName("")
	}
	if r := a.keyVaultConsentRemedy(err, name); r != "" {
		return r
	}
	return remedyFor(err, name)
}

func remedyFor(err error, profileName string) string {
	if r := failure.RemedyOf(err); r != "" {
		return r // the failing layer knew the command
	}
	if r := safefs.RemedyOf(err); r != "" {
		return r // a file or folder another user could write: what to do with it
	}
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
	var e *failure.Error
	errors.As(err, &e)
	if e != nil && e.AADSTS == "50020" {
		// Consenting again would not help: the account has no access in that tenant.
		return "check --tenant: the signed-in account needs access there (a GDAP relationship with a role, or a guest account)"
	}
	switch failure.KindOf(err) {
	case failure.ConsentNeeded:
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
