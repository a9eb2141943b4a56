package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pctoken/pctoken-helper/consent"
	"github.com/pctoken/pctoken-helper/entra"
	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/profile"
	"github.com/pctoken/pctoken-helper/settings"
)

// ConsentCmd is the interactive step.
type ConsentCmd struct {
	Flow              string            `enum:"auth-code,device-code" default:"auth-code" help:"auth-code (browser, loopback redirect) or device-code (public clients)."`
	Scopes            []string          `placeholder:"S" help:"Scopes consented at this step (default: Partner Center user_impersonation); offline_access is always added."`
	PortRange         consent.PortRange `name:"port-range" default:"8400-8999" help:"Loopback ports tried in order for the redirect."`
	Timeout           time.Duration     `default:"5m" help:"Bound on the whole step."`
	NoBrowser         bool              `name:"no-browser" help:"Print the URL instead of opening a browser."`
	ClientSecretStdin bool              `name:"client-secret-stdin" help:"Read the client secret from stdin and keep it in the secure store."`
}

func (c *ConsentCmd) Run(ctx context.Context, a *App) error {
	// Everything that can be checked is checked before anyone is asked to sign in.
	if err := settings.CheckScopes(c.Scopes); err != nil {
		return err
	}
	s, err := a.appSettings("consent needs the application id: pass --client-id ID or set PCTOKEN_CLIENT_ID")
	if err != nil {
		return err
	}
	var secret string
	if c.ClientSecretStdin {
		if secret, err = readSecretLine(a.Stdin, "client secret"); err != nil {
			return err
		}
	}
	cred, err := a.consentCredential(s, secret)
	if err != nil {
		return err
	}
	home := firstOf(a.Tenant, s.HomeTenant, "organizations")
	app, err := a.entraApp(s, cred, home)
	if err != nil {
		return err
	}
	scopeList := settings.Scopes(s.Login, s.Scopes, c.Scopes)
	if len(c.Scopes) == 0 && len(s.Scopes) > 0 {
		scopeList = scopesOf(s)
	}
	if c.Flow == "device-code" && settings.OneResource(scopeList) != nil {
		return usageError("the device-code flow consents to one resource per run: run consent once per resource, or use --flow auth-code, which consents to all of them at once")
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()

	var t entra.Token
	switch c.Flow {
	case "device-code":
		show, end := a.deviceCodePrompt(ctx)
		t, err = app.DeviceCode(ctx, scopeList, show)
		end()
	default:
		t, err = c.authCode(ctx, a, app, scopeList)
	}
	if err != nil {
		return err
	}
	return a.saveConsent(s, app, t, scopeList, secret)
}

func (c *ConsentCmd) authCode(ctx context.Context, a *App, app entra.App, scopeList []string) (entra.Token, error) {
	l, err := consent.Listen(c.PortRange)
	if err != nil {
		return entra.Token{}, usageError("%w", err)
	}
	defer l.Close()
	verifier, challenge, err := consent.NewPKCE()
	if err != nil {
		return entra.Token{}, err
	}
	state, err := consent.NewState()
	if err != nil {
		return entra.Token{}, err
	}
	authURL, err := app.AuthCodeURL(ctx, l.RedirectURI(), scopeList, state, challenge)
	if err != nil {
		return entra.Token{}, err
	}
	// The listener answers while the browser starts: Open waits a moment to report an
	// opener that fails at once, and a fast browser must not queue behind that wait.
	type waited struct {
		code string
		err  error
	}
	done := make(chan waited, 1)
	go func() {
		code, err := l.Wait(ctx, state)
		done <- waited{code, err}
	}()
	fmt.Fprintf(a.Stderr, "To consent, sign in at:\n\n  %s\n\n", authURL)
	if !c.NoBrowser {
		if err := a.Browser.Open(authURL); err != nil {
			fmt.Fprintf(a.Stderr, "Could not open a browser (%s); open the URL above yourself, or sign in on another device: pctoken-helper consent --flow device-code\n", shown(err.Error()))
		}
	}
	fmt.Fprintf(a.Stderr, "Waiting for the redirect to %s (up to %s)...\n", l.RedirectURI(), c.Timeout)
	w := <-done
	code, err := w.code, w.err
	if err != nil {
		var ae *consent.AuthError
		switch {
		case errors.As(err, &ae):
			err = entra.AuthorizeError(ae.Code, ae.Description, err)
			l.Finish(consent.Outcome{Err: err, Remedy: a.remedy(err)})
			return entra.Token{}, err
		case errors.Is(err, context.DeadlineExceeded):
			return entra.Token{}, &failure.Error{Kind: failure.ConsentNeeded, Message: fmt.Sprintf("consent was not completed within %s (--timeout)", c.Timeout), Err: err}
		}
		return entra.Token{}, err
	}
	// The authorize step consented to every scope; the token (and so the redemption,
	// lest MSAL call the other resources declined) is for the first resource only.
	t, err := app.RedeemCode(ctx, code, l.RedirectURI(), settings.FirstResource(scopeList), verifier)
	// The browser waits on the result page for this outcome.
	l.Finish(consent.Outcome{Err: err, Account: t.Account.Username, Remedy: a.remedy(err)})
	return t, err
}

// appSettings resolves the profile for consent or import: both need the app's id,
// and a home tenant that can stand in the authority's path.
func (a *App) appSettings(missingID string) (*settings.Profile, error) {
	s, err := a.settingsFor("")
	if err != nil {
		return nil, err
	}
	if s.ClientID == "" {
		return nil, usageError("%s", missingID)
	}
	if err := settings.CheckClientID(s.ClientID); err != nil {
		return nil, err
	}
	if err := settings.CheckTenant(firstOf(a.Tenant, s.HomeTenant, "organizations")); err != nil {
		return nil, err
	}
	return s, nil
}

// consentCredential is the credential for consent: a secret just read, the variable,
// a certificate, or a secret stored earlier for this profile.
func (a *App) consentCredential(s *settings.Profile, secret string) (*entra.Credential, error) {
	if secret != "" {
		return &entra.Credential{Secret: secret}, nil
	}
	return a.credential(s)
}

// saveConsent stores the refresh token (and secret) and saves the profile.
func (a *App) saveConsent(s *settings.Profile, app entra.App, t entra.Token, scopeList []string, secret string) error {
	st, used, err := a.secureStore(s)
	if err != nil {
		return err
	}
	if secret != "" {
		if err := st.Set(secretKey(s.Name), secret); err != nil {
			return configError("failed to store the client secret: %w", err)
		}
		s.StoredSecret = true
	}
	if t.RefreshToken != "" { // "": adopted from the Key Vault store, left there as it is
		if err := st.Set(refreshKey(s.Name), t.RefreshToken); err != nil {
			return configError("failed to store the refresh token: %w", err)
		}
	}
	now := a.Now().UTC()
	p := s.Profile
	p.Name = s.Name
	p.HomeTenant = firstOf(t.Account.HomeTenantID, p.HomeTenant)
	p.Store = used
	if s.Store == "" {
		p.Store = "" // auto stays auto, so the profile moves with its machine
	}
	if used == storeKeyVault {
		p.KeyVaultSecret = a.keyVaultSecretURL(s)
	}
	p.Scopes = scopeList
	p.Account = profile.Account{Username: t.Account.Username, HomeAccountID: t.Account.HomeAccountID, HomeTenantID: t.Account.HomeTenantID}
	p.ConsentedAt, p.RotatedAt = now, now
	p.Refused = nil
	dir, err := a.given().Profiles()
	if err != nil {
		return err
	}
	if err := dir.Save(p); err != nil {
		return configError("%w", err)
	}
	a.forget(s.Name)

	fmt.Fprintf(a.Stderr, "Consent saved for profile %s.\n  account:     %s\n  home tenant: %s\n  scopes:      %s\n  store:       %s\n",
		s.Name, shown(orDefault(t.Account.Username, "-")), shown(p.HomeTenant), shown(strings.Join(t.Scopes, " ")), used)
	if !t.HasMFA() {
		fmt.Fprintf(a.Stderr, "warning: this sign-in did not use multi-factor authentication; Partner Center rejects app+user tokens without it. Sign in again with MFA: pctoken-helper consent --profile %s\n", s.Name)
	}
	fmt.Fprintf(a.Stderr, "Next: pctoken-helper get --profile %s\n", s.Name)
	return nil
}

func scopesOf(s *settings.Profile) []string {
	out := make([]string, len(s.Scopes))
	for i, sc := range s.Scopes {
		out[i] = s.Login.Scope(sc)
	}
	return out
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// maxSecretLine bounds a secret read from stdin. Refresh tokens are a few kilobytes
// and client secrets far less; a longer line is refused, never cut to size (a cut
// token fails later with an unclear answer from the identity provider).
const maxSecretLine = 64 << 10

// readSecretLine reads one line from r, for secrets passed on stdin. It reads at most
// one byte past the limit, so a caller that leaves stdin open is not waited on.
func readSecretLine(r io.Reader, what string) (string, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, maxSecretLine+1), 4096)
	line, err := br.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", usageError("cannot read the %s from stdin: %w", what, err)
	}
	if len(strings.TrimRight(line, "\r\n")) > maxSecretLine {
		return "", usageError("the %s on stdin is longer than %d bytes", what, maxSecretLine)
	}
	line = strings.TrimSpace(line)
	if line == "" {
		return "", usageError("no %s on stdin", what)
	}
	registerSecret(line)
	return line, nil
}

// ImportCmd adopts a refresh token obtained elsewhere.
type ImportCmd struct {
	Scope   []string      `short:"s" placeholder:"S" help:"Scope to redeem the token for (default: Partner Center user_impersonation)."`
	Timeout time.Duration `default:"30s" help:"Bound on the redemption."`
}

func (c *ImportCmd) Run(ctx context.Context, a *App) error {
	if err := settings.CheckScopes(c.Scope); err != nil {
		return err
	}
	s, err := a.appSettings("import needs the application id the refresh token was issued to: pass --client-id ID")
	if err != nil {
		return err
	}
	rt, adopted, err := a.importedToken(ctx, s)
	if err != nil {
		return err
	}
	cred, err := a.credential(s)
	if err != nil {
		return err
	}
	home := firstOf(a.Tenant, s.HomeTenant, "organizations")
	app, err := a.entraApp(s, cred, home)
	if err != nil {
		return err
	}
	scopeList := settings.Scopes(s.Login, s.Scopes, c.Scope)
	if err := settings.OneResource(scopeList); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	// One redemption validates the token and names its account.
	t, err := app.Redeem(ctx, rt, entra.Account{}, "", scopeList)
	if err != nil {
		return err
	}
	if t.RefreshToken == "" {
		t.RefreshToken = rt
	}
	if adopted {
		t.RefreshToken = "" // the vault's token stays as it is: a reader may adopt it
	}
	return a.saveConsent(s, app, t, scopeList, "")
}
