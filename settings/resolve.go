package settings

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pctoken/pctoken-helper/cache"
	"github.com/pctoken/pctoken-helper/cloud"
	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/profile"
	"github.com/pctoken/pctoken-helper/suggest"
)

// Given is what the user set for this run, a flag over its variable (kong, or the
// early path's scanner, has applied that rule); "" means not set.
type Given struct {
	Profile           string
	ClientID          string
	Tenant            string
	Cloud             string
	AuthorityHost     string
	ClientCertificate string
	Store             string
	StoreDir          string
	CacheDir          string
	ConfigDir         string
}

// WithCluster fills what no flag or variable set from a kubeconfig's exec extension
// (its profile, tenant and scopes): flags win over the cluster, the cluster over the
// saved profile. A Kubernetes API server needs a scope named for it: with none from
// either, it fails (the profile's default, Partner Center, is never right there).
func (g Given) WithCluster(scopes []string, clusterProfile, clusterTenant string, clusterScopes []string) (Given, []string, error) {
	if g.Profile == "" {
		g.Profile = clusterProfile
	}
	if g.Tenant == "" {
		g.Tenant = clusterTenant
	}
	if len(scopes) == 0 {
		scopes = clusterScopes
	}
	if len(scopes) == 0 {
		return g, nil, failure.Errorf(failure.Usage, "exec-credential needs the cluster's scope: pass --scope (e.g. --scope aks) or set scopes in the kubeconfig's exec extension")
	}
	return g, scopes, nil
}

// ProfileName is the profile a run is for: explicit (a --request line's), else the
// given one, else the default.
func (g Given) ProfileName(explicit string) string {
	switch {
	case explicit != "":
		return explicit
	case g.Profile != "":
		return g.Profile
	}
	return profile.Default
}

// ConfigFolder is the folder of saved profiles and the file store.
func (g Given) ConfigFolder() (string, error) {
	d, err := Dir(g.ConfigDir, os.UserConfigDir)
	if err != nil {
		return "", failure.Errorf(failure.Configuration, "no user config dir (pass --config-dir): %w", err)
	}
	return d, nil
}

// CacheFolder is the folder of the access-token cache.
func (g Given) CacheFolder() (string, error) {
	d, err := Dir(g.CacheDir, os.UserCacheDir)
	if err != nil {
		return "", failure.Errorf(failure.Configuration, "no user cache dir (pass --cache-dir): %w", err)
	}
	return d, nil
}

// Profiles is the folder of saved profiles.
func (g Given) Profiles() (profile.Dir, error) {
	d, err := g.ConfigFolder()
	return profile.Dir(filepath.Join(d, "profiles")), err
}

// Profile is a profile's effective settings: given > saved at consent > default.
type Profile struct {
	profile.Profile
	// Saved tells whether consent or import saved the profile.
	Saved bool
	// Login is the cloud the profile signs in to.
	Login cloud.Cloud
	// Authority is the login host as a URL (the cloud's, or --authority-host).
	Authority string
}

// Loader reads a saved profile; profile.ErrNotFound when there is none.
type Loader func(name string) (profile.Profile, error)

// ResolveProfile resolves the settings of the named profile (see ProfileName).
func ResolveProfile(g Given, name string, load Loader) (Profile, error) {
	name = g.ProfileName(name)
	if err := profile.ValidName(name); err != nil {
		return Profile{}, failure.Errorf(failure.Usage, "%w", err)
	}
	p, err := load(name)
	saved := err == nil
	if err != nil && !errors.Is(err, profile.ErrNotFound) {
		return Profile{}, &failure.Error{Kind: failure.Configuration, Profile: name, Message: err.Error(), Err: err}
	}
	s := Profile{Profile: p, Saved: saved}
	s.Name = name
	override(&s.ClientID, g.ClientID)
	override(&s.Cloud, g.Cloud)
	override(&s.AuthorityHost, g.AuthorityHost)
	override(&s.Store, g.Store)
	override(&s.StoreDir, g.StoreDir)
	override(&s.ClientCertificate, g.ClientCertificate)
	if err := CheckStore(s.Store); err != nil {
		return Profile{}, err
	}
	if s.Login, err = cloud.Lookup(s.Cloud); err != nil {
		return Profile{}, failure.Errorf(failure.Usage, "%w", err)
	}
	s.Authority = s.Login.LoginHost
	if s.AuthorityHost != "" {
		if s.Authority, err = cloud.NormalizeAuthorityHost(s.AuthorityHost); err != nil {
			return Profile{}, failure.Errorf(failure.Usage, "%w", err)
		}
	}
	return s, nil
}

// Stores are the secure stores --store names ("" is auto); securestore opens them.
var Stores = []string{"auto", "secret-service", "keychain", "wincred", "kwallet", "pass", "file", "azure-keyvault"}

// CheckStore refuses an unknown --store before anything is asked or sent.
func CheckStore(name string) error {
	if name == "" || slices.Contains(Stores, name) {
		return nil
	}
	msg := "unknown store " + QuoteShort(name) + " (stores: " + strings.Join(Stores, ", ") + ")"
	if near := suggest.Nearest(name, Stores); near != "" {
		msg = "unknown store " + QuoteShort(name) + ": did you mean " + near + "? (stores: " + strings.Join(Stores, ", ") + ")"
	}
	return &failure.Error{Kind: failure.Usage, Message: msg}
}

// LoadFrom reads profiles from g's config folder.
func LoadFrom(g Given) Loader {
	return func(name string) (profile.Profile, error) {
		dir, err := g.Profiles()
		if err != nil {
			return profile.Profile{}, err
		}
		return dir.Load(name)
	}
}

func override(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

// Wanted is what a token command asks for besides the profile: a tenant and scopes
// given for this request ("" and none: the given or saved defaults), and the freshness
// bounds.
type Wanted struct {
	Tenant      string
	Scopes      []string
	MinValidity time.Duration
	Timeout     time.Duration
}

// ResolveToken is the access token a command asks for, as its cache key: p's app and
// authority, the tenant (w's, else the given one, else p's home tenant, else
// organizations) and the scopes with aliases resolved. The early path and the full
// command line both call it, so they cannot disagree on which token a command means.
func ResolveToken(p Profile, g Given, w Wanted) (cache.Key, error) {
	fail := func(k failure.Kind, format string, args ...any) (cache.Key, error) {
		e := failure.Errorf(k, format, args...)
		e.Profile = p.Name
		return cache.Key{}, e
	}
	if p.ClientID == "" {
		return fail(failure.ConsentNeeded, "profile %s was never consented (no client id)", p.Name)
	}
	if err := CheckClientID(p.ClientID); err != nil {
		return cache.Key{}, failure.WithProfile(err, p.Name)
	}
	if w.MinValidity < 0 || w.Timeout < 0 {
		return fail(failure.Usage, "--min-validity and --timeout must not be negative")
	}
	tenant := w.Tenant
	if tenant == "" {
		tenant = g.Tenant
	}
	if tenant != "" && IsMultiTenant(tenant) {
		return fail(failure.Usage, "--tenant %s names no tenant: a token is issued in one tenant; give a tenant id or domain, or leave --tenant out for the profile's home tenant", tenant)
	}
	if tenant == "" {
		tenant = p.HomeTenant
	}
	if tenant == "" {
		tenant = "organizations"
	}
	if err := CheckTenant(tenant); err != nil {
		return cache.Key{}, failure.WithProfile(err, p.Name)
	}
	if err := CheckScopes(w.Scopes); err != nil {
		return cache.Key{}, failure.WithProfile(err, p.Name)
	}
	scopes := Scopes(p.Login, p.Scopes, w.Scopes)
	if err := OneResource(scopes); err != nil {
		return cache.Key{}, failure.WithProfile(err, p.Name)
	}
	return cache.Key{Profile: p.Name, ClientID: p.ClientID, Authority: p.Authority, Tenant: tenant, Scopes: scopes}, nil
}

// IsMultiTenant reports whether t is one of the authority aliases that name no single
// tenant; MSAL refuses them as a request's tenant.
func IsMultiTenant(t string) bool {
	switch strings.ToLower(t) {
	case "common", "organizations", "consumers":
		return true
	}
	return false
}

// ResourceOf is the resource a scope names: what precedes the last "/" in
// "https://graph.microsoft.com/.default" or "<app id>/.default". OIDC scopes and bare
// permissions such as "User.Read" give "".
func ResourceOf(scope string) string {
	if i := strings.LastIndex(scope, "/"); i > 0 {
		return strings.ToLower(strings.TrimRight(scope[:i], "/"))
	}
	return ""
}

// OneResource fails when scopes name two resources: Entra issues a token for the
// first one only, and MSAL then reports the others as declined.
func OneResource(scopes []string) error {
	first := ""
	for _, sc := range scopes {
		switch r := ResourceOf(sc); {
		case r == "":
		case first == "":
			first = r
		case r != first:
			return failure.Errorf(failure.Usage, "a token is for one resource, but %s and %s were asked for together: ask for each in its own request", first, r)
		}
	}
	return nil
}

// FirstResource keeps the scopes of the first resource named (and those naming none).
func FirstResource(scopes []string) []string {
	first, out := "", []string{}
	for _, sc := range scopes {
		r := ResourceOf(sc)
		if r != "" && first == "" {
			first = r
		}
		if r == "" || r == first {
			out = append(out, sc)
		}
	}
	return out
}

// CheckTenant refuses a tenant that is neither a tenant id nor a domain name. The
// tenant becomes a segment of the token endpoint's path, so a '/', '?', '%' or ".."
// would send the refresh token to another path, and an overlong one only gets an
// unclear 400 from the identity provider.
func CheckTenant(t string) error {
	if !IsTenant(t) {
		return failure.Errorf(failure.Usage, "invalid tenant %s: want a tenant id (GUID) or a domain such as contoso.onmicrosoft.com", QuoteShort(t))
	}
	return nil
}

// CheckClientID refuses anything but a GUID: Entra's application (client) ids are
// GUIDs, and anything else only gets an unclear answer from the identity provider.
func CheckClientID(id string) error {
	if !IsGUID(id) {
		return failure.Errorf(failure.Usage, "invalid client id %s: an application (client) id is a GUID such as 00000000-0000-0000-0000-000000000000", QuoteShort(id))
	}
	return nil
}

// VerboseVariable turns on diagnostics, as --verbose does.
const VerboseVariable = "PCTOKEN_VERBOSE"

// Verbose reads PCTOKEN_VERBOSE as kong reads a bool flag's value, except that an
// exported but empty (or blank) variable counts as unset, as for every other variable.
func Verbose(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "":
		return false, nil
	case "true", "1", "yes":
		return true, nil
	case "false", "0", "no":
		return false, nil
	}
	return false, failure.Errorf(failure.Usage, "invalid value %s of PCTOKEN_VERBOSE (as --verbose): want true, 1, yes, false, 0 or no", QuoteShort(v))
}

// QuoteShort quotes s for an error message, cut to a readable length.
func QuoteShort(s string) string {
	const maxLen = 80
	if len(s) > maxLen {
		return strconv.Quote(s[:maxLen]) + "..."
	}
	return strconv.Quote(s)
}
