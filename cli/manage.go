package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pctoken/pctoken-helper/cache"
	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/profile"
	"github.com/pctoken/pctoken-helper/securestore"
)

// StatusCmd shows what is stored, never a secret.
type StatusCmd struct {
	Output string `short:"o" enum:"json,text" default:"text" help:"text or json."`
}

type statusProfile struct {
	Name          string        `json:"name"`
	ClientID      string        `json:"client_id"`
	Cloud         string        `json:"cloud"`
	AuthorityHost string        `json:"authority_host,omitempty"`
	Account       string        `json:"account,omitempty"`
	HomeTenant    string        `json:"home_tenant,omitempty"`
	Store         string        `json:"store,omitempty"`
	Confidential  bool          `json:"confidential"`
	Scopes        []string      `json:"scopes,omitempty"`
	ConsentedAt   *time.Time    `json:"consented_at,omitempty"`
	RotatedAt     *time.Time    `json:"refresh_token_rotated_at,omitempty"`
	DaysLeft      *int          `json:"days_left,omitempty"`
	KeyVault      *kvStatus     `json:"keyvault,omitempty"`
	Tokens        []statusToken `json:"cached_tokens"`
}

type statusToken struct {
	Tenant    string    `json:"tenant"`
	TenantID  string    `json:"tenant_id,omitempty"`
	Scopes    []string  `json:"scopes"`
	ExpiresOn time.Time `json:"expires_at"`
	Expired   bool      `json:"expired"`
}

func (s *StatusCmd) Run(a *App) error {
	dir, err := a.profileDir()
	if err != nil {
		return err
	}
	names, err := dir.List()
	if err != nil {
		return configError("%w", err)
	}
	var entries []cache.Entry
	if c, err := a.openCache(); err == nil {
		entries, _ = c.List()
	} else {
		a.warnf("%v", err)
	}
	now := a.Now()
	var out []statusProfile
	for _, name := range names {
		p, err := dir.Load(name)
		if err != nil {
			a.warnf("%v", err)
			continue
		}
		sp := statusProfile{
			Name: name, ClientID: p.ClientID, Cloud: orDefault(p.Cloud, "public"), AuthorityHost: p.AuthorityHost,
			Account: p.Account.Username, HomeTenant: p.HomeTenant, Store: orDefault(p.Store, "auto"),
			Confidential: p.StoredSecret || p.ClientCertificate != "", Scopes: p.Scopes, Tokens: []statusToken{},
		}
		if !p.ConsentedAt.IsZero() {
			sp.ConsentedAt = &p.ConsentedAt
		}
		if !p.RotatedAt.IsZero() {
			days := p.DaysLeft(now)
			sp.RotatedAt, sp.DaysLeft = &p.RotatedAt, &days
		}
		if sp.KeyVault = a.keyVaultStatus(p); sp.KeyVault != nil && sp.KeyVault.DaysLeft != nil {
			sp.DaysLeft = sp.KeyVault.DaysLeft // the fleet's token is the vault's
		}
		for _, e := range entries {
			if e.Key.Profile == name {
				sp.Tokens = append(sp.Tokens, statusToken{Tenant: e.Key.Tenant, TenantID: e.TenantID, Scopes: e.Key.Scopes, ExpiresOn: e.ExpiresOn.UTC(), Expired: !e.ExpiresOn.After(now)})
			}
		}
		sort.Slice(sp.Tokens, func(i, j int) bool { return sp.Tokens[i].Tenant < sp.Tokens[j].Tenant })
		out = append(out, sp)
	}
	if s.Output == "json" {
		if out == nil {
			out = []statusProfile{}
		}
		enc := json.NewEncoder(a.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"profiles": out})
	}
	if len(out) == 0 {
		fmt.Fprintln(a.Stdout, "No profiles. Start with: pctoken-helper consent --client-id ID")
		return nil
	}
	for i, p := range out {
		if i > 0 {
			fmt.Fprintln(a.Stdout)
		}
		tw := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "profile\t%s\n", p.Name)
		fmt.Fprintf(tw, "client id\t%s\n", p.ClientID)
		cloudName := p.Cloud
		if p.AuthorityHost != "" {
			cloudName += " (" + p.AuthorityHost + ")"
		}
		fmt.Fprintf(tw, "cloud\t%s\n", cloudName)
		fmt.Fprintf(tw, "account\t%s\n", orDefault(p.Account, "-"))
		fmt.Fprintf(tw, "home tenant\t%s\n", orDefault(p.HomeTenant, "-"))
		fmt.Fprintf(tw, "store\t%s\n", p.Store)
		writeKeyVaultStatus(tw, p.KeyVault)
		if p.RotatedAt != nil {
			fmt.Fprintf(tw, "refresh token\trotated %s, %d days left before the 90-day inactivity limit\n", p.RotatedAt.UTC().Format(time.RFC3339), *p.DaysLeft)
		} else {
			fmt.Fprintf(tw, "refresh token\tnever rotated\n")
		}
		if len(p.Tokens) == 0 {
			fmt.Fprintf(tw, "cached tokens\tnone\n")
		}
		for _, t := range p.Tokens {
			state := "expires " + t.ExpiresOn.Format(time.RFC3339)
			if t.Expired {
				state = "expired " + t.ExpiresOn.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "cached token\t%s  %s  %s\n", t.Tenant, strings.Join(t.Scopes, " "), state)
		}
		tw.Flush()
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// RenewCmd redeems refresh tokens so their inactivity window starts again.
type RenewCmd struct {
	All     bool          `help:"Renew every saved profile."`
	Timeout time.Duration `default:"30s" help:"Bound on each profile's renewal."`
}

func (r *RenewCmd) Run(ctx context.Context, a *App) error {
	ctx = securestore.WithWriteRequired(ctx) // renew is the write: the Key Vault store always writes
	names := []string{a.profileName("")}
	if r.All {
		dir, err := a.profileDir()
		if err != nil {
			return err
		}
		if names, err = dir.List(); err != nil {
			return configError("%w", err)
		}
		if len(names) == 0 {
			return &failure.Error{Kind: failure.ConsentNeeded, Message: "no saved profiles to renew"}
		}
	}
	var worst error
	for _, name := range names {
		req, _, err := a.tokenRequest(name, "", nil, TokenFlags{ForceRefresh: true})
		if err == nil {
			_, err = a.fetch(ctx, req, r.Timeout)
		}
		if err != nil {
			fmt.Fprintf(a.Stdout, "%s: renewal failed: %v\n", name, err)
			showError(a.Stderr, err, remedyFor(err, name))
			if worst == nil || exitCode(err) == exitConsent {
				worst = err
			}
			continue
		}
		p, _ := a.mustProfileDir().Load(name)
		fmt.Fprintf(a.Stdout, "%s: renewed, %d days left\n", name, p.DaysLeft(a.Now()))
	}
	if worst != nil {
		return silent{exitCode(worst)}
	}
	return nil
}

func (a *App) mustProfileDir() profile.Dir {
	d, _ := a.profileDir()
	return d
}

// LogoutCmd forgets a profile.
type LogoutCmd struct {
	All          bool `help:"Forget every saved profile."`
	DeleteSecret bool `name:"delete-secret" help:"With the azure-keyvault store: also delete the vault's secret (soft delete; other machines lose the token)."`
}

func (l *LogoutCmd) Run(a *App) error {
	dir, err := a.profileDir()
	if err != nil {
		return err
	}
	names := []string{a.profileName("")}
	if l.All {
		if names, err = dir.List(); err != nil {
			return configError("%w", err)
		}
	}
	var errs []error
	for _, name := range names {
		s, err := a.settingsFor(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !s.saved {
			fmt.Fprintf(a.Stderr, "No saved profile %s; cached tokens of that name, if any, were dropped.\n", name)
		}
		if l.DeleteSecret {
			if err := a.deleteKeyVaultSecret(s); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if err := a.logout(dir, name); err != nil {
			errs = append(errs, err)
			continue
		}
		if s.saved {
			fmt.Fprintf(a.Stderr, "Forgot profile %s.\n", name)
		}
	}
	return errors.Join(errs...)
}

func (a *App) logout(dir profile.Dir, name string) error {
	s, err := a.settingsFor(name)
	if err != nil {
		return err
	}
	if s.saved {
		st, _, err := a.secureStore(s)
		if err != nil {
			return err
		}
		if err := st.Remove(refreshKey(name)); err != nil {
			return configError("failed to remove the refresh token of %s: %w", name, err)
		}
		if err := st.Remove(secretKey(name)); err != nil {
			return configError("failed to remove the client secret of %s: %w", name, err)
		}
	}
	if c, err := a.openCache(); err == nil {
		if _, err := c.DeleteProfile(name); err != nil {
			return err
		}
	}
	return dir.Delete(name)
}
