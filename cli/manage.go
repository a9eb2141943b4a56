package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
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
	Output   string `short:"o" enum:"json,text" default:"text" help:"text or json."`
	WarnDays int    `name:"warn-days" placeholder:"N" help:"Exit 3, saying why on stderr, when a refresh token was refused or ends within N days, or a GDAP relationship (as the last tenants saw it) does."`
}

// statusProfile is a profile as status reports it: what profile show says, the Key
// Vault secret's state, and the cached tokens.
type statusProfile struct {
	profileInfo
	KeyVault *kvStatus     `json:"keyvault,omitempty"`
	Tokens   []statusToken `json:"cached_tokens"`
}

type statusToken struct {
	Tenant    string    `json:"tenant"`
	TenantID  string    `json:"tenant_id,omitempty"`
	Scopes    []string  `json:"scopes"`
	ExpiresOn time.Time `json:"expires_at"`
	Expired   bool      `json:"expired"`
}

func (s *StatusCmd) Run(a *App) error {
	if s.WarnDays < 0 {
		return usageError("--warn-days must not be negative")
	}
	profiles, err := a.collectStatus(a.Profile)
	if err != nil {
		return err
	}
	var warnings []statusWarning
	if s.WarnDays > 0 {
		if warnings, err = a.expiryWarnings(profiles, time.Duration(s.WarnDays)*24*time.Hour); err != nil {
			return err
		}
	}
	if s.Output == "json" {
		err = writeStatusJSON(a.Stdout, profiles, warnings, s.WarnDays > 0)
	} else {
		err = writeStatusText(a.Stdout, profiles)
	}
	if err != nil {
		return err
	}
	for _, w := range warnings {
		fmt.Fprintf(a.Stderr, "warning: profile %s: %s\nhint: %s\n", w.Profile, shown(w.Message), shown(w.Remedy))
	}
	if len(warnings) > 0 {
		return silent{exitConsent}
	}
	return nil
}

// collectStatus reads every saved profile and the cached tokens, as of now. Damaged
// profiles and an unreadable cache are warned about and left out.
func (a *App) collectStatus(only string) ([]statusProfile, error) {
	dir, err := a.given().Profiles()
	if err != nil {
		return nil, err
	}
	names, err := dir.List()
	if err != nil {
		return nil, configError("%w", err)
	}
	if only != "" {
		if !slices.Contains(names, only) {
			return nil, a.missingProfile(only)
		}
		names = []string{only}
	}
	var entries []cache.Entry
	if c, err := a.openCache(); err == nil {
		entries, _ = c.List()
	} else {
		a.warnf("%v", err)
	}
	now := a.Now()
	out := []statusProfile{}
	for _, name := range names {
		p, err := dir.Load(name)
		if err != nil {
			a.warnf("%v", err)
			continue
		}
		sp := statusProfile{profileInfo: newProfileInfo(p, now), Tokens: []statusToken{}}
		if sp.KeyVault = a.keyVaultStatus(p); sp.KeyVault != nil && sp.KeyVault.DaysLeft != nil && sp.Refused == nil {
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
	return out, nil
}

func writeStatusJSON(w io.Writer, profiles []statusProfile, warnings []statusWarning, warned bool) error {
	doc := map[string]any{"profiles": profiles}
	if warned {
		if warnings == nil {
			warnings = []statusWarning{}
		}
		doc["warnings"] = warnings
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

func writeStatusText(w io.Writer, profiles []statusProfile) error {
	if len(profiles) == 0 {
		_, err := fmt.Fprintln(w, "No profiles. Start with: pctoken-helper consent --client-id ID")
		return err
	}
	for i, p := range profiles {
		if i > 0 {
			fmt.Fprintln(w)
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
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
		if p.Refused != nil {
			fmt.Fprintf(tw, "refresh token\tNEEDS CONSENT: refused %s (AADSTS%s: %s); 0 days left; run: pctoken-helper consent --profile %s\n", p.Refused.At.Format(time.RFC3339), p.Refused.AADSTS, p.Refused.Reason, p.Name)
		} else if p.RotatedAt != nil {
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
		if err := tw.Flush(); err != nil {
			return err
		}
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
	dir, err := a.given().Profiles()
	if err != nil {
		return err
	}
	names := []string{a.profileName("")}
	if r.All {
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
			fmt.Fprintf(a.Stdout, "%s: renewal failed: %s\n", name, shown(err.Error()))
			a.showError(err, a.remedy(err))
			if worst == nil || exitCode(err) == exitConsent {
				worst = err
			}
			continue
		}
		p, _ := dir.Load(name)
		fmt.Fprintf(a.Stdout, "%s: renewed, %d days left\n", name, p.DaysLeft(a.Now()))
	}
	if worst != nil {
		return silent{exitCode(worst)}
	}
	return nil
}

// LogoutCmd forgets a profile.
type LogoutCmd struct {
	All          bool `help:"Forget every saved profile (asks on a terminal; elsewhere needs --yes)."`
	Yes          bool `help:"Do not ask for confirmation."`
	DeleteSecret bool `name:"delete-secret" help:"With the azure-keyvault store: also delete the vault's secret (soft delete; other machines lose the token)."`
}

func (l *LogoutCmd) Run(a *App) error {
	dir, err := a.given().Profiles()
	if err != nil {
		return err
	}
	names := []string{a.profileName("")}
	if l.All {
		if names, err = dir.List(); err != nil {
			return configError("%w", err)
		}
		if len(names) > 0 && !l.Yes {
			if err := a.confirm(fmt.Sprintf("Forget every saved profile (%s), its refresh token and its cached tokens?", strings.Join(names, ", "))); err != nil {
				return err
			}
		}
	}
	var errs []error
	for _, name := range names {
		s, err := a.settingsFor(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !s.Saved {
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
		if s.Saved {
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
	if s.Saved {
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

// confirm asks question on the terminal and fails unless the answer is yes. Where no
// person can answer (no terminal: a script, CI), it fails with the flag that confirms.
func (a *App) confirm(question string) error {
	if a.IsTerminal == nil || !a.IsTerminal() {
		return usageError("%s Confirm with --yes (there is no terminal to ask on)", question)
	}
	tty, err := a.TTY()
	if err != nil {
		return usageError("%s Confirm with --yes (the terminal cannot be opened: %w)", question, err)
	}
	defer tty.Close()
	fmt.Fprintf(tty, "%s [y/N] ", question)
	answer, _ := bufio.NewReader(tty).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		return usageError("not confirmed: nothing was forgotten")
	}
	return nil
}
