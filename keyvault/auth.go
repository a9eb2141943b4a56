package keyvault

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/pctoken/pctoken-helper/cache"
	"github.com/pctoken/pctoken-helper/cloud"
)

// AuthMethods are the values of --keyvault-auth.
var AuthMethods = []string{"default", "managed-identity", "workload-identity", "environment", "azure-cli"}

// ValidAuth checks a --keyvault-auth value ("" is default).
func ValidAuth(method string) error {
	if method == "" {
		return nil
	}
	for _, m := range AuthMethods {
		if m == method {
			return nil
		}
	}
	return fmt.Errorf("unknown --keyvault-auth %s: valid methods are %s", quoteShort(method), strings.Join(AuthMethods, ", "))
}

// NewCredential is the azidentity credential of a --keyvault-auth method. Each reads
// azidentity's usual variables (AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_CLIENT_SECRET,
// AZURE_CLIENT_CERTIFICATE_PATH, AZURE_FEDERATED_TOKEN_FILE, AZURE_AUTHORITY_HOST,
// IDENTITY_ENDPOINT...). For an authority host outside Microsoft's clouds (a local
// identity provider, an air-gapped cloud), instance discovery is off, as it is for the
// helper's own --authority-host, so nothing is asked of login.microsoftonline.com.
func NewCredential(method string, getenv func(string) string) (azcore.TokenCredential, error) {
	if err := ValidAuth(method); err != nil {
		return nil, err
	}
	co := azcore.ClientOptions{Transport: noRedirectClient(nil)}
	noDiscovery := false
	if h := getenv("AZURE_AUTHORITY_HOST"); h != "" {
		if norm, err := cloud.NormalizeAuthorityHost(h); err == nil {
			noDiscovery = !cloud.IsMicrosoftHost(norm)
		}
	}
	switch method {
	case "managed-identity":
		o := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: co}
		if id := getenv("AZURE_CLIENT_ID"); id != "" {
			o.ID = azidentity.ClientID(id)
		}
		return azidentity.NewManagedIdentityCredential(o)
	case "workload-identity":
		return azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: noDiscovery})
	case "environment":
		return azidentity.NewEnvironmentCredential(&azidentity.EnvironmentCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: noDiscovery})
	case "azure-cli":
		return azidentity.NewAzureCLICredential(nil)
	}
	return azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: noDiscovery})
}

// CachedCredential keeps the vault's access tokens in the helper's access-token cache,
// so that a refresh in a new process costs no request to the identity provider for the
// vault. Entries live under the profile (logout drops them; status lists them) with a
// client id that is not a GUID ("keyvault:<method>:<AZURE_CLIENT_ID>"), so that no get
// for the profile's own app can ever be answered with one.
type CachedCredential struct {
	Cred    azcore.TokenCredential
	Cache   *cache.Cache
	Profile string
	Method  string // --keyvault-auth, part of the key
	Who     string // what tells identities of one method apart (AZURE_CLIENT_ID)
	Vault   string // the vault URL, as the key's authority
	Now     func() time.Time

	mu       sync.Mutex
	served   bool
	fromDisk *cache.Key // the key of the token the disk served, until Forget
}

// Forget drops the token the disk served, after the vault refused it (401), and
// reports whether there was one: the caller then tries once more, and the credential
// is asked for a new token.
func (c *CachedCredential) Forget() bool {
	c.mu.Lock()
	k := c.fromDisk
	c.fromDisk = nil
	c.mu.Unlock()
	if k == nil {
		return false
	}
	_ = c.Cache.Delete(*k)
	return true
}

// minValidity is the margin a cached vault token must still have: a vault call takes
// seconds at most, and azcore itself refreshes tokens 5 minutes before they expire.
const minValidity = 5 * time.Minute

// GetToken answers from the cache, else from Cred (and caches the answer). A request
// with claims (a CAE challenge) always goes to Cred.
func (c *CachedCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	key := cache.Key{Profile: c.Profile, ClientID: "keyvault:" + c.Method + ":" + c.Who, Authority: c.Vault, Tenant: opts.TenantID, Scopes: opts.Scopes}
	// azcore keeps the token it got for the rest of the process, and asks again only
	// when that one is about to expire or the vault refused it (revoked, another
	// tenant, a clock that disagrees): so the disk serves the first ask only.
	c.mu.Lock()
	first := !c.served
	c.served = true
	c.mu.Unlock()
	if c.Cache != nil && opts.Claims == "" && first {
		if e, ok := c.Cache.Load(key); ok && cache.Fresh(e, now(), minValidity) {
			c.mu.Lock()
			c.fromDisk = &key
			c.mu.Unlock()
			return azcore.AccessToken{Token: e.AccessToken, ExpiresOn: e.ExpiresOn}, nil
		}
	}
	t, err := c.Cred.GetToken(ctx, opts)
	if err != nil {
		return t, &credentialError{err}
	}
	if c.Cache != nil && t.ExpiresOn.After(now()) {
		_ = c.Cache.Store(key, cache.Entry{AccessToken: t.Token, ExpiresOn: t.ExpiresOn, TenantID: opts.TenantID, Scopes: opts.Scopes})
	}
	return t, nil
}

// markCredential wraps a credential so its failures are told apart (credentialError).
type markCredential struct{ azcore.TokenCredential }

func (m markCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	t, err := m.TokenCredential.GetToken(ctx, opts)
	if err != nil {
		return t, &credentialError{err}
	}
	return t, nil
}

// noRedirectClient is an HTTP client that honours HTTPS_PROXY and NO_PROXY, never
// follows a redirect (a 3xx is returned as it is, and fails the call), and, when
// allow is set, refuses any request it does not allow before it is sent.
func noRedirectClient(allow func(*url.URL) error) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyFromEnvironment
	var rt http.RoundTripper = tr
	if allow != nil {
		rt = pinned{allow: allow, next: tr}
	}
	return &http.Client{
		Transport:     rt,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type pinned struct {
	allow func(*url.URL) error
	next  http.RoundTripper
}

func (p pinned) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := p.allow(r.URL); err != nil {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, err
	}
	return p.next.RoundTrip(r)
}

// onlyVault allows https requests to host on port 443 and nothing else.
func onlyVault(host string) func(*url.URL) error {
	return func(u *url.URL) error {
		if u.Scheme != "https" || !strings.EqualFold(u.Hostname(), host) || (u.Port() != "" && u.Port() != "443") {
			return fmt.Errorf("refused to send a request for the vault to %s://%s: only https://%s is allowed", u.Scheme, u.Host, host)
		}
		return nil
	}
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "unknown"
	}
	return h
}
