package entra

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"

	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/redact"
)

// AuthCodeURL is the authorize URL for the consent step. MSAL's own AuthCodeURL adds no
// state, no PKCE and no OIDC scopes, so they are added here: state and the S256 PKCE
// challenge always, and offline_access so that a refresh token comes back.
func (a App) AuthCodeURL(ctx context.Context, redirectURI string, scopes []string, state, challenge string) (string, error) {
	client, err := a.client(&rtCache{})
	if err != nil {
		return "", err
	}
	all := append([]string{"openid", "profile", "offline_access"}, ResourceScopes(scopes)...)
	raw, err := client.authCodeURL(ctx, a.ClientID, redirectURI, all)
	if err != nil {
		return "", Classify(err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("authorize URL: %w", err)
	}
	q := u.Query()
	q.Set("state", state)
	q.Set("code_challenge", challenge)
	q.Set("code_challenge_method", "S256")
	q.Set("response_mode", "query")
	q.Set("prompt", "select_account")
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// RedeemCode exchanges the authorization code for tokens; verifier is the PKCE verifier.
func (a App) RedeemCode(ctx context.Context, code, redirectURI string, scopes []string, verifier string) (Token, error) {
	c := &rtCache{}
	client, err := a.client(c)
	if err != nil {
		return Token{}, err
	}
	res, err := client.byAuthCode(ctx, code, redirectURI, ResourceScopes(scopes), verifier)
	if err != nil {
		return Token{}, Classify(err)
	}
	return a.consented(res, c, scopes)
}

// DevicePrompt is what a person needs to finish the device-code flow on another
// device: the identity provider's message (the code and the URL to open), cleaned of
// control characters, and when the code stops working.
type DevicePrompt struct {
	Message   string
	ExpiresOn time.Time
}

// DeviceCode runs the device-code flow (public clients only). show receives the
// prompt once, before the wait for the sign-in starts; DeviceCode returns when the
// sign-in is done, the code expires, or ctx ends.
func (a App) DeviceCode(ctx context.Context, scopes []string, show func(DevicePrompt)) (Token, error) {
	if a.Credential != nil {
		return Token{}, &failure.Error{Kind: failure.Usage, Message: "the device-code flow is for public clients: drop the client secret or certificate, or use --flow auth-code"}
	}
	c := &rtCache{}
	client, err := a.client(c)
	if err != nil {
		return Token{}, err
	}
	pc := client.(publicClient)
	dc, err := pc.c.AcquireTokenByDeviceCode(ctx, ResourceScopes(scopes))
	if err != nil {
		return Token{}, Classify(err)
	}
	// The message (and the user code in it) comes from the identity provider and
	// goes to a terminal: no escape sequence, bell or carriage return gets through.
	show(DevicePrompt{Message: redact.String(dc.Result.Message), ExpiresOn: dc.Result.ExpiresOn})
	res, err := dc.AuthenticationResult(ctx)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return Token{}, &failure.Error{Kind: failure.ConsentNeeded, Message: "the device code was not used within the timeout", Err: err}
		}
		return Token{}, Classify(err)
	}
	return a.consented(res, c, scopes)
}

func (a App) consented(res public.AuthResult, c *rtCache, scopes []string) (Token, error) {
	if res.Account.HomeAccountID == "" {
		return Token{}, &failure.Error{Kind: failure.Unexpected, Message: "the identity provider returned no account", Err: errNoAccount}
	}
	t, claims := tokenFrom(res)
	if err := a.vet(&t, claims, "", "", ResourceScopes(scopes), time.Now()); err != nil {
		return Token{}, err
	}
	t.RefreshToken = c.rotated("")
	if t.RefreshToken == "" {
		return Token{}, &failure.Error{Kind: failure.Configuration, Message: "the identity provider returned no refresh token: is offline_access allowed for the app?"}
	}
	return t, nil
}

// HasMFA reports whether the sign-in used multi-factor authentication; Partner Center
// rejects app+user tokens without it.
func (t Token) HasMFA() bool {
	for _, m := range t.AMR {
		if strings.EqualFold(m, "mfa") {
			return true
		}
	}
	return false
}
