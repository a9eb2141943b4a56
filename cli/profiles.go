package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/profile"
	"github.com/pctoken/pctoken-helper/suggest"
)

// ProfileCmd lists and shows saved profiles, never a secret.
type ProfileCmd struct {
	List ProfileListCmd `cmd:"" help:"List saved profiles: client id, cloud, account, home tenant, store, days left."`
	Show ProfileShowCmd `cmd:"" help:"Show one saved profile."`
}

// ProfileListCmd lists saved profiles.
type ProfileListCmd struct {
	Output string `short:"o" enum:"text,json" default:"text" help:"text or json."`
}

// ProfileShowCmd shows one saved profile.
type ProfileShowCmd struct {
	Output string `short:"o" enum:"text,json" default:"text" help:"text or json."`
	Name   string `arg:"" optional:"" placeholder:"P" predictor:"profile" help:"The profile to show (default: --profile, else default)."`
}

// profileInfo is what profile list and show report of a saved profile.
type profileInfo struct {
	Name          string     `json:"name"`
	ClientID      string     `json:"client_id"`
	Cloud         string     `json:"cloud"`
	AuthorityHost string     `json:"authority_host,omitempty"`
	Account       string     `json:"account,omitempty"`
	HomeTenant    string     `json:"home_tenant,omitempty"`
	Store         string     `json:"store"`
	StoreDir      string     `json:"store_dir,omitempty"`
	Confidential  bool       `json:"confidential"`
	Scopes        []string   `json:"scopes,omitempty"`
	ConsentedAt   *time.Time `json:"consented_at,omitempty"`
	RotatedAt     *time.Time `json:"refresh_token_rotated_at,omitempty"`
	// DaysLeft is null when no rotation was ever recorded, 0 once refused.
	DaysLeft     *int           `json:"days_left"`
	NeedsConsent bool           `json:"needs_consent"`
	Refused      *statusRefusal `json:"refused,omitempty"`
}

type statusRefusal struct {
	AADSTS string    `json:"aadsts,omitempty"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

func newProfileInfo(p profile.Profile, now time.Time) profileInfo {
	info := profileInfo{
		Name: p.Name, ClientID: p.ClientID, Cloud: orDefault(p.Cloud, "public"), AuthorityHost: p.AuthorityHost,
		Account: p.Account.Username, HomeTenant: firstOf(p.HomeTenant, p.Account.HomeTenantID),
		Store: orDefault(p.Store, "auto"), StoreDir: p.StoreDir,
		Confidential: p.StoredSecret || p.ClientCertificate != "", Scopes: p.Scopes,
	}
	if !p.ConsentedAt.IsZero() {
		t := p.ConsentedAt.UTC()
		info.ConsentedAt = &t
	}
	if !p.RotatedAt.IsZero() {
		t := p.RotatedAt.UTC()
		info.RotatedAt = &t
	}
	if !p.RotatedAt.IsZero() || p.Refused != nil {
		days := max(0, p.DaysLeft(now))
		info.DaysLeft = &days
	}
	if p.Refused != nil {
		info.NeedsConsent = true
		info.Refused = &statusRefusal{AADSTS: p.Refused.AADSTS, Reason: p.Refused.Reason, At: p.Refused.At.UTC()}
	}
	return info
}

func (c *ProfileListCmd) Run(a *App) error {
	dir, err := a.given().Profiles()
	if err != nil {
		return err
	}
	names, err := dir.List()
	if err != nil {
		return configError("%w", err)
	}
	infos := []profileInfo{}
	for _, name := range names {
		p, err := dir.Load(name)
		if err != nil {
			a.warnf("%v", err)
			continue
		}
		infos = append(infos, newProfileInfo(p, a.Now()))
	}
	if c.Output == "json" {
		return writeJSON(a.Stdout, map[string]any{"profiles": infos})
	}
	return writeProfileTable(a.Stdout, infos)
}

func (c *ProfileShowCmd) Run(a *App) error {
	dir, err := a.given().Profiles()
	if err != nil {
		return err
	}
	if c.Name == "" {
		c.Name = a.profileName("")
	}
	if err := profile.ValidName(c.Name); err != nil {
		return usageError("%w", err)
	}
	p, err := dir.Load(c.Name)
	if err != nil {
		names, _ := dir.List()
		err = unknownProfile(c.Name, names, err)
		a.showError(err, a.remedy(err))
		return silent{exitCode(err)}
	}
	info := newProfileInfo(p, a.Now())
	if c.Output == "json" {
		return writeJSON(a.Stdout, info)
	}
	return writeProfileDetail(a.Stdout, info)
}

// unknownProfile is the failure for a profile name that was not found (err is
// profile.ErrNotFound) or could not be read: with other profiles saved, a usage error
// naming the nearest and listing them all; with none at all, consent is needed.
func unknownProfile(name string, saved []string, err error) error {
	if !errors.Is(err, profile.ErrNotFound) {
		return failure.WithProfile(configError("%w", err), name)
	}
	if len(saved) == 0 {
		return &failure.Error{Kind: failure.ConsentNeeded, Profile: name,
			Message: fmt.Sprintf("no profile %s: no profile was ever saved", name),
			Remedy:  "pctoken-helper consent --profile " + name + " --client-id ID"}
	}
	msg := fmt.Sprintf("no profile %s", name)
	remedy := "pctoken-helper consent --profile " + name + " --client-id ID, or one of the saved profiles (pctoken-helper profile list)"
	if near := suggest.Nearest(name, saved); near != "" {
		msg += fmt.Sprintf(": did you mean %s?", near)
		remedy = "pctoken-helper profile show " + near
	}
	msg += " (saved profiles: " + strings.Join(saved, ", ") + ")"
	return &failure.Error{Kind: failure.Usage, Profile: name, Message: msg, Remedy: remedy}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func daysText(d *int) string {
	if d == nil {
		return "-"
	}
	return strconv.Itoa(*d)
}

func writeProfileTable(w io.Writer, infos []profileInfo) error {
	if len(infos) == 0 {
		_, err := fmt.Fprintln(w, "No profiles. Start with: pctoken-helper consent --client-id ID")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCLIENT ID\tCLOUD\tACCOUNT\tHOME TENANT\tSTORE\tDAYS LEFT")
	for _, p := range infos {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.ClientID, p.Cloud,
			orDefault(p.Account, "-"), orDefault(p.HomeTenant, "-"), p.Store, daysText(p.DaysLeft))
	}
	return tw.Flush()
}

func writeProfileDetail(w io.Writer, p profileInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("profile", p.Name)
	row("client id", p.ClientID)
	cloudName := p.Cloud
	if p.AuthorityHost != "" {
		cloudName += " (" + p.AuthorityHost + ")"
	}
	row("cloud", cloudName)
	row("account", orDefault(p.Account, "-"))
	row("home tenant", orDefault(p.HomeTenant, "-"))
	store := p.Store
	if p.StoreDir != "" {
		store += " (" + p.StoreDir + ")"
	}
	row("store", store)
	row("client", map[bool]string{true: "confidential (secret or certificate)", false: "public"}[p.Confidential])
	row("scopes", orDefault(strings.Join(p.Scopes, " "), "-"))
	if p.ConsentedAt != nil {
		row("consented", p.ConsentedAt.Format(time.RFC3339))
	}
	if p.RotatedAt != nil {
		row("refresh token", fmt.Sprintf("rotated %s, %d days left before the 90-day inactivity limit", p.RotatedAt.Format(time.RFC3339), *p.DaysLeft))
	} else {
		row("refresh token", "never rotated")
	}
	return tw.Flush()
}
