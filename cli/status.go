package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pctoken/pctoken-helper/cache"
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
