// Package entra is the helper's client of Microsoft Entra ID. It redeems a stored
// refresh token for an access token through MSAL Go, runs the calls of the consent step,
// and classifies failures into what a caller acts on: consent needed, transient,
// configuration.
//
// MSAL Go offers no call that redeems a refresh token brought from outside. The way in
// is its cache: each call builds a fresh MSAL client whose cache accessor hands MSAL a
// cache holding only the refresh token, under MSAL's own key, and captures the rotated
// refresh token when MSAL exports the cache after the redemption. No access token is
// ever placed in MSAL's cache, so MSAL always asks Entra, and the confidential-client
// refresh_on bug (an app-only token returned for a user request) cannot trigger.
package entra

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"

	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/idphttp"
)

// App is an application registration as the helper uses it.
type App struct {
	ClientID      string
	AuthorityHost string // https://login.microsoftonline.com or a custom host
	// HomeTenant is the tenant of the authority: the partner's tenant id, or at
	// consent a domain or "organizations".
	HomeTenant string
	// Credential is nil for a public client.
	Credential *Credential
	HTTPClient *http.Client
	// InstanceDiscovery is on only for Microsoft's own hosts: for any other host
	// MSAL would call login.microsoftonline.com and fail offline.
	InstanceDiscovery bool
}

// Credential proves a confidential client's identity: a secret, or a PEM holding the
// certificate and its private key.
type Credential struct {
	Secret  string
	CertPEM []byte
}

// LoadCertificate reads a PEM file holding a certificate and its private key.
func LoadCertificate(path string) (*Credential, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, failure.Errorf(failure.Configuration, "failed to read the client certificate: %w", err)
	}
	if _, _, err := parseCert(b); err != nil {
		return nil, err
	}
	return &Credential{CertPEM: b}, nil
}

func parseCert(pem []byte) ([]*x509.Certificate, crypto.PrivateKey, error) {
	certs, key, err := confidential.CertFromPEM(pem, "")
	if err != nil {
		return nil, nil, failure.Errorf(failure.Configuration, "the client certificate file must be a PEM holding the certificate and its unencrypted private key: %w", err)
	}
	return certs, key, nil
}

// Account identifies the consenting user.
type Account struct {
	HomeAccountID string // "<object id>.<home tenant id>", from client_info
	Username      string
	HomeTenantID  string
}

// Token is the outcome of a redemption.
type Token struct {
	AccessToken string
	ExpiresOn   time.Time
	TenantID    string // the tenant the token was issued in (its tid claim)
	Scopes      []string
	Account     Account
	// RefreshToken is the rotated refresh token; the caller must save it.
	RefreshToken string
	// AMR lists the authentication methods of the sign-in (Partner Center needs "mfa").
	AMR []string
}

// reservedScopes are added by MSAL itself; passing them again trips MSAL's
// declined-scope check against real Entra, whose answer never lists offline_access.
var reservedScopes = map[string]bool{"openid": true, "profile": true, "offline_access": true}

// ResourceScopes drops the OIDC scopes MSAL adds on its own.
func ResourceScopes(scopes []string) []string {
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		if !reservedScopes[strings.ToLower(s)] {
			out = append(out, s)
		}
	}
	return out
}

// importAccountID stands in for the unknown account of an imported refresh token: MSAL
// looks a refresh token up by account, and the answer's client_info names the real one.
const importAccountID = "00000000-0000-0000-0000-000000000000.00000000-0000-0000-0000-000000000000"

// Redeem exchanges refreshToken for an access token to scopes in tenant ("" for the
// app's home tenant). acct.HomeAccountID may be empty for a refresh token of unknown
// origin (import). The rotated refresh token comes back in Token.RefreshToken.
// RedeemOption adds to a redemption what some requests need.
type RedeemOption func(*redeemOptions)

type redeemOptions struct{ claims string }

// WithClaims asks for a token that satisfies a claims challenge (a resource's
// WWW-Authenticate insufficient_claims, or a Conditional Access authentication
// context), as JSON.
func WithClaims(claims string) RedeemOption {
	return func(o *redeemOptions) { o.claims = claims }
}

func (a App) Redeem(ctx context.Context, refreshToken string, acct Account, tenant string, scopes []string, opts ...RedeemOption) (Token, error) {
	var o redeemOptions
	for _, opt := range opts {
		opt(&o)
	}
	scopes = ResourceScopes(scopes)
	if len(scopes) == 0 {
		return Token{}, &failure.Error{Kind: failure.Usage, Message: "no resource scope to request"}
	}
	env, err := a.environment()
	if err != nil {
		return Token{}, err
	}
	homeID := acct.HomeAccountID
	if homeID == "" {
		homeID = importAccountID
	}
	c := &rtCache{seed: seedCache(homeID, env, a.ClientID, refreshToken)}
	client, err := a.client(c)
	if err != nil {
		return Token{}, err
	}
	msalAcct := public.Account{HomeAccountID: homeID, Environment: env}
	res, err := client.silent(ctx, scopes, msalAcct, tenantOption(tenant, a.HomeTenant), o.claims)
	if err != nil {
		return Token{}, Classify(err)
	}
	// MSAL may answer a user request with an app-only token (see the package doc);
	// such a token must never be handed out as the user's.
	if res.Account.HomeAccountID == "" {
		return Token{}, &failure.Error{Kind: failure.Unexpected, Message: "the identity provider returned a token without a user account"}
	}
	t, claims := tokenFrom(res)
	if err := a.vet(&t, claims, tenant, acct.HomeTenantID, scopes, time.Now()); err != nil {
		return Token{}, err
	}
	t.RefreshToken = c.rotated(refreshToken)
	return t, nil
}

// tenantOption leaves MSAL's tenant alone when it is the authority's own: MSAL refuses
// "organizations" and "common" as an explicit tenant.
func tenantOption(tenant, home string) string {
	if tenant == "" || strings.EqualFold(tenant, home) {
		return ""
	}
	return tenant
}

func tokenFrom(res public.AuthResult) (Token, jwtClaims) {
	claims := accessTokenClaims(res.AccessToken)
	t := Token{
		AccessToken: res.AccessToken,
		ExpiresOn:   res.ExpiresOn,
		Scopes:      ResourceScopes(res.GrantedScopes),
		TenantID:    claims.TenantID,
		AMR:         claims.AMR,
		Account: Account{
			HomeAccountID: res.Account.HomeAccountID,
			Username:      res.Account.PreferredUsername,
		},
	}
	if _, utid, ok := strings.Cut(res.Account.HomeAccountID, "."); ok {
		t.Account.HomeTenantID = utid
	}
	if t.TenantID == "" {
		t.TenantID = res.IDToken.TenantID
	}
	if t.TenantID == "" {
		t.TenantID = res.Account.Realm
	}
	return t, claims
}

type jwtClaims struct {
	TenantID string          `json:"tid"`
	AMR      []string        `json:"amr"`
	Exp      *float64        `json:"exp"`
	Aud      json.RawMessage `json:"aud"`
	// readable: the token is a JWT whose claims could be read.
	readable bool
}

// accessTokenClaims reads claims from an access token without verifying it: the
// token came straight from the identity provider over TLS, and the helper only
// reports what it says. Tokens that are not JWTs yield no claims.
func accessTokenClaims(token string) jwtClaims {
	var c jwtClaims
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return c
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return c
	}
	if err := json.Unmarshal(b, &c); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return jwtClaims{}
		}
	}
	c.readable = true
	return c
}

// environment is MSAL's name for the authority host: host and port, lower case.
func (a App) environment() (string, error) {
	u, err := url.Parse(a.AuthorityHost)
	if err != nil || u.Host == "" {
		return "", &failure.Error{Kind: failure.Configuration, Message: fmt.Sprintf("invalid authority host %q", a.AuthorityHost)}
	}
	return strings.ToLower(u.Host), nil
}

func (a App) authority() string {
	tenant := a.HomeTenant
	if tenant == "" {
		tenant = "organizations"
	}
	return strings.TrimRight(a.AuthorityHost, "/") + "/" + tenant
}

// msalClient is the part of MSAL's public and confidential clients the helper uses.
type msalClient interface {
	silent(ctx context.Context, scopes []string, acct public.Account, tenant, claims string) (public.AuthResult, error)
	authCodeURL(ctx context.Context, clientID, redirectURI string, scopes []string) (string, error)
	byAuthCode(ctx context.Context, code, redirectURI string, scopes []string, verifier string) (public.AuthResult, error)
}

func (a App) client(c *rtCache) (msalClient, error) {
	if a.ClientID == "" {
		return nil, &failure.Error{Kind: failure.Configuration, Message: "no client id: pass --client-id or set PCTOKEN_CLIENT_ID"}
	}
	// Every request MSAL makes may carry a refresh token, a secret, an assertion or a
	// code: only over https to the authority host, never through a redirect.
	httpClient, err := idphttp.Restrict(a.HTTPClient, a.AuthorityHost)
	if err != nil {
		return nil, err
	}
	if a.Credential == nil {
		p, err := public.New(a.ClientID,
			public.WithAuthority(a.authority()),
			public.WithCache(c),
			public.WithHTTPClient(httpClient),
			public.WithInstanceDiscovery(a.InstanceDiscovery))
		if err != nil {
			return nil, failure.Errorf(failure.Configuration, "failed to set up the public client: %w", err)
		}
		return publicClient{p}, nil
	}
	var cred confidential.Credential
	if len(a.Credential.CertPEM) > 0 {
		certs, key, perr := parseCert(a.Credential.CertPEM)
		if perr != nil {
			return nil, perr
		}
		cred, err = confidential.NewCredFromCert(certs, key)
	} else {
		cred, err = confidential.NewCredFromSecret(a.Credential.Secret)
	}
	if err != nil {
		return nil, failure.Errorf(failure.Configuration, "invalid client credential: %w", err)
	}
	cc, err := confidential.New(a.authority(), a.ClientID, cred,
		confidential.WithCache(c),
		confidential.WithHTTPClient(httpClient),
		confidential.WithInstanceDiscovery(a.InstanceDiscovery),
		confidential.WithX5C())
	if err != nil {
		return nil, failure.Errorf(failure.Configuration, "failed to set up the confidential client: %w", err)
	}
	return confidentialClient{cc}, nil
}

type publicClient struct{ c public.Client }

func (p publicClient) silent(ctx context.Context, scopes []string, acct public.Account, tenant, claims string) (public.AuthResult, error) {
	opts := []public.AcquireSilentOption{public.WithSilentAccount(acct)}
	if tenant != "" {
		opts = append(opts, public.WithTenantID(tenant))
	}
	if claims != "" {
		opts = append(opts, public.WithClaims(claims))
	}
	return p.c.AcquireTokenSilent(ctx, scopes, opts...)
}

func (p publicClient) authCodeURL(ctx context.Context, clientID, redirectURI string, scopes []string) (string, error) {
	return p.c.AuthCodeURL(ctx, clientID, redirectURI, scopes)
}

func (p publicClient) byAuthCode(ctx context.Context, code, redirectURI string, scopes []string, verifier string) (public.AuthResult, error) {
	return p.c.AcquireTokenByAuthCode(ctx, code, redirectURI, scopes, public.WithChallenge(verifier))
}

type confidentialClient struct{ c confidential.Client }

func (p confidentialClient) silent(ctx context.Context, scopes []string, acct public.Account, tenant, claims string) (public.AuthResult, error) {
	opts := []confidential.AcquireSilentOption{confidential.WithSilentAccount(acct)}
	if tenant != "" {
		opts = append(opts, confidential.WithTenantID(tenant))
	}
	if claims != "" {
		opts = append(opts, confidential.WithClaims(claims))
	}
	return p.c.AcquireTokenSilent(ctx, scopes, opts...)
}

func (p confidentialClient) authCodeURL(ctx context.Context, clientID, redirectURI string, scopes []string) (string, error) {
	return p.c.AuthCodeURL(ctx, clientID, redirectURI, scopes)
}

func (p confidentialClient) byAuthCode(ctx context.Context, code, redirectURI string, scopes []string, verifier string) (public.AuthResult, error) {
	return p.c.AcquireTokenByAuthCode(ctx, code, redirectURI, scopes, confidential.WithChallenge(verifier))
}

var errNoAccount = errors.New("no account in the answer")
