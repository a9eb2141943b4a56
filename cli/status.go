package cli

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pctoken/pctoken-helper/cache"
	"github.com/pctoken/pctoken-helper/cloud"
	"github.com/pctoken/pctoken-helper/settings"
)

// StatusCmd shows what is stored, never a secret.
type StatusCmd struct {
	Output   string   `short:"o" enum:"json,text" default:"text" help:"text or json."`
	WarnDays int      `name:"warn-days" placeholder:"N" help:"Exit 3, saying why on stderr, when a refresh token was refused or ends within N days, or a GDAP relationship (as the last tenants saw it) does."`
	Scope    []string `short:"s" placeholder:"S" help:"Only the cached tokens for this scope or alias (any scope of its resource); repeatable. --tenant T narrows to one tenant (its name or id)."`
}

// statusProfile is a profile as status reports it: what profile show says, the Key
// Vault secret's state, and the cached tokens.
type statusProfile struct {
	profileInfo
	KeyVault *kvStatus     `json:"keyvault,omitempty"`
	Tokens   []statusToken `json:"cached_tokens"`
}

// statusToken is one cached token as status shows it: the entries of one token asked
// for by tenant name and by tenant id (token caches it under both) are one row.
type statusToken struct {
	Tenant   string `json:"tenant"` // as asked for: the name when there is one, else the id
	TenantID string `json:"tenant_id,omitempty"`
	// TenantNames are the names (domains, organizations) it was asked for by, besides the id.
	TenantNames []string  `json:"tenant_names,omitempty"`
	Scopes      []string  `json:"scopes"`
	Alias       string    `json:"alias,omitempty"` // the scope alias (graph, arm...) when the scope is one
	ExpiresOn   time.Time `json:"expires_at"`
	Expired     bool      `json:"expired"`

	clientID, authority string // with the tenant id and scopes, what makes rows one
}

// unsavedProfile holds the cached tokens of a profile name that has no saved profile on
// this machine: CI mode (PCTOKEN_REFRESH_TOKEN) or a Key Vault store given by flags.
type unsavedProfile struct {
	Name     string        `json:"name"`
	ClientID string        `json:"client_id"`
	Tokens   []statusToken `json:"cached_tokens"`
}

// statusFilter narrows the cached tokens status shows; the zero value shows all.
type statusFilter struct {
	Tenant string   // a tenant name or id
	Scopes []string // as given: aliases or scopes, resolved in each profile's cloud
}

func (f statusFilter) active() bool { return f.Tenant != "" || len(f.Scopes) > 0 }

// describe is the filter as the command line gave it, for the count line.
func (f statusFilter) describe() string {
	var parts []string
	if f.Tenant != "" {
		parts = append(parts, "--tenant "+f.Tenant)
	}
	for _, s := range f.Scopes {
		parts = append(parts, "--scope "+s)
	}
	return strings.Join(parts, " ")
}

// statusReport is what status collected, as of Now.
type statusReport struct {
	Profiles []statusProfile
	Unsaved  []unsavedProfile
	Now      time.Time
	Filter   statusFilter
	All      int // cached tokens before the filter
}

func (s *StatusCmd) Run(a *App) error {
	if s.WarnDays < 0 {
		return usageError("--warn-days must not be negative")
	}
	f := statusFilter{Tenant: a.Tenant, Scopes: s.Scope}
	if f.Tenant != "" {
		if err := settings.CheckTenant(f.Tenant); err != nil {
			return err
		}
	}
	if err := settings.CheckScopes(f.Scopes); err != nil {
		return err
	}
	rep, err := a.collectStatus(a.Profile, f)
	if err != nil {
		return err
	}
	var warnings []statusWarning
	if s.WarnDays > 0 {
		if warnings, err = a.expiryWarnings(rep.Profiles, time.Duration(s.WarnDays)*24*time.Hour); err != nil {
			return err
		}
	}
	if s.Output == "json" {
		err = writeStatusJSON(a.Stdout, rep, warnings, s.WarnDays > 0)
	} else {
		err = writeStatusText(a.Stdout, rep)
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

// collectStatus reads the saved profiles (only the one named, if any) and the cached
// tokens, as of now, expired ones included. Damaged profiles and an unreadable cache
// are warned about and left out. With no profile named, cached tokens of names that
// have no saved profile (CI mode) are reported too.
func (a *App) collectStatus(only string, f statusFilter) (statusReport, error) {
	rep := statusReport{Profiles: []statusProfile{}, Now: a.Now(), Filter: f}
	dir, err := a.given().Profiles()
	if err != nil {
		return rep, err
	}
	names, err := dir.List()
	if err != nil {
		return rep, configError("%w", err)
	}
	listed := names
	if only != "" {
		if !slices.Contains(names, only) {
			return rep, a.missingProfile(only)
		}
		names = []string{only}
	}
	var entries []cache.Entry
	if c, err := a.openCache(); err != nil {
		a.warnf("%v", err)
	} else if entries, err = c.List(); err != nil {
		a.warnf("cached tokens left out: %v", err)
	}
	byProfile := map[string][]cache.Entry{}
	for _, e := range entries {
		byProfile[e.Key.Profile] = append(byProfile[e.Key.Profile], e)
	}
	for _, name := range names {
		p, err := dir.Load(name)
		if err != nil {
			a.warnf("%v", err)
			continue
		}
		sp := statusProfile{profileInfo: newProfileInfo(p, rep.Now)}
		if sp.KeyVault = a.keyVaultStatus(p); sp.KeyVault != nil && sp.KeyVault.DaysLeft != nil && sp.Refused == nil {
			sp.DaysLeft = sp.KeyVault.DaysLeft // the fleet's token is the vault's
		}
		all := statusTokens(byProfile[name], sp.Cloud, rep.Now)
		rep.All += len(all)
		sp.Tokens = f.keep(all, sp.Cloud)
		rep.Profiles = append(rep.Profiles, sp)
	}
	if only != "" {
		return rep, nil
	}
	for name, es := range byProfile {
		if slices.Contains(listed, name) {
			continue // saved (or damaged, and warned about)
		}
		all := statusTokens(es, "", rep.Now)
		rep.All += len(all)
		u := unsavedProfile{Name: name, Tokens: f.keep(all, "")}
		if i := slices.IndexFunc(es, func(e cache.Entry) bool { return settings.IsGUID(e.Key.ClientID) }); i >= 0 {
			u.ClientID = es[i].Key.ClientID // not the Key Vault store's own tokens'
		}
		rep.Unsaved = append(rep.Unsaved, u)
	}
	slices.SortFunc(rep.Unsaved, func(x, y unsavedProfile) int { return cmp.Compare(x.Name, y.Name) })
	return rep, nil
}

// statusTokens turns one profile's cache entries into rows: the entries of one token
// (same app, authority, tenant id and scopes: asked for by name and by id) are one row,
// named by both and valid as long as the later of them. Rows are sorted by tenant.
func statusTokens(entries []cache.Entry, cloudName string, now time.Time) []statusToken {
	c, _ := cloud.Lookup(cloudName) // an unknown cloud (a damaged profile) shows full scopes
	var out []statusToken
	row := map[string]int{} // a token's identity -> its index in out
	for _, e := range entries {
		id := strings.ToLower(e.TenantID)
		if !settings.IsGUID(id) {
			id = ""
		}
		if id == "" && settings.IsGUID(e.Key.Tenant) {
			id = e.Key.Tenant
		}
		same := e.Key
		same.Tenant = id
		i, ok := row[same.ID()]
		if id == "" || !ok {
			t := statusToken{TenantID: id, Scopes: e.Key.Scopes, ExpiresOn: e.ExpiresOn.UTC(), clientID: e.Key.ClientID, authority: e.Key.Authority}
			if len(e.Key.Scopes) == 1 && c.Name != "" {
				t.Alias = c.AliasOf(e.Key.Scopes[0])
			}
			out = append(out, t)
			i = len(out) - 1
			row[same.ID()] = i
		}
		t := &out[i]
		if e.Key.Tenant != id && !slices.Contains(t.TenantNames, e.Key.Tenant) {
			t.TenantNames = append(t.TenantNames, e.Key.Tenant)
		}
		if e.ExpiresOn.After(t.ExpiresOn) {
			t.ExpiresOn = e.ExpiresOn.UTC()
		}
	}
	for i := range out {
		t := &out[i]
		slices.Sort(t.TenantNames)
		t.Tenant = t.TenantID
		if len(t.TenantNames) > 0 {
			t.Tenant = t.TenantNames[0]
		}
		t.Expired = !t.ExpiresOn.After(now)
	}
	slices.SortFunc(out, func(x, y statusToken) int {
		return cmp.Or(cmp.Compare(x.Tenant, y.Tenant), cmp.Compare(x.TenantID, y.TenantID), slices.Compare(x.Scopes, y.Scopes), cmp.Compare(x.clientID, y.clientID))
	})
	return out
}

// keep returns the rows f lets through: the tenant by any of its names or its id, a
// scope by its full value or its resource (--scope graph keeps every Graph token).
func (f statusFilter) keep(rows []statusToken, cloudName string) []statusToken {
	out := []statusToken{}
	if !f.active() {
		return append(out, rows...)
	}
	var wanted []string
	if len(f.Scopes) > 0 {
		c, err := cloud.Lookup(cloudName)
		if err != nil {
			c, _ = cloud.Lookup("")
		}
		wanted = settings.Scopes(c, nil, f.Scopes)
	}
	for _, t := range rows {
		if f.Tenant != "" && !strings.EqualFold(f.Tenant, t.TenantID) && !slices.ContainsFunc(t.TenantNames, func(n string) bool { return strings.EqualFold(n, f.Tenant) }) {
			continue
		}
		if len(wanted) > 0 && !slices.ContainsFunc(t.Scopes, func(sc string) bool { return scopeMatches(sc, wanted) }) {
			continue
		}
		out = append(out, t)
	}
	return out
}

func scopeMatches(scope string, wanted []string) bool {
	for _, w := range wanted {
		if strings.EqualFold(scope, w) {
			return true
		}
		if r := settings.ResourceOf(w); r != "" && r == settings.ResourceOf(scope) {
			return true
		}
	}
	return false
}

func writeStatusJSON(w io.Writer, rep statusReport, warnings []statusWarning, warned bool) error {
	doc := map[string]any{"profiles": rep.Profiles}
	if len(rep.Unsaved) > 0 {
		doc["unsaved_profiles"] = rep.Unsaved
	}
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

// writeStatusText is status for a person: per profile a short block of settings, then
// its cached tokens as one aligned table, times relative to now; a count line ends it.
func writeStatusText(w io.Writer, rep statusReport) error {
	if len(rep.Profiles) == 0 && len(rep.Unsaved) == 0 {
		_, err := fmt.Fprintln(w, "No profiles. Start with: pctoken-helper consent --client-id ID")
		return err
	}
	now := rep.Now
	shownRows, expired := 0, 0
	block := func(tokens []statusToken, home string) error {
		shownRows += len(tokens)
		for _, t := range tokens {
			if t.Expired {
				expired++
			}
		}
		return writeTokenTable(w, tokens, home, now, rep.Filter)
	}
	first := true
	sep := func() {
		if !first {
			fmt.Fprintln(w)
		}
		first = false
	}
	for _, p := range rep.Profiles {
		sep()
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
		writeKeyVaultStatus(tw, p.KeyVault, now)
		fmt.Fprintf(tw, "refresh token\t%s\n", refreshTokenText(p.profileInfo, now))
		if err := tw.Flush(); err != nil {
			return err
		}
		if err := block(p.Tokens, p.HomeTenant); err != nil {
			return err
		}
	}
	for _, u := range rep.Unsaved {
		sep()
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "profile\t%s (not saved on this machine: CI mode or flags only)\n", u.Name)
		fmt.Fprintf(tw, "client id\t%s\n", orDefault(u.ClientID, "-"))
		if err := tw.Flush(); err != nil {
			return err
		}
		if err := block(u.Tokens, ""); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	_, err := fmt.Fprintln(w, countLine(shownRows, expired, rep.All, rep.Filter))
	return err
}

// refreshTokenText is the refresh token's line: refused (consent needed), or its
// rotation and days left, relative to now.
func refreshTokenText(p profileInfo, now time.Time) string {
	switch {
	case p.Refused != nil:
		return fmt.Sprintf("NEEDS CONSENT: refused %s (AADSTS%s: %s); 0 days left; run: pctoken-helper consent --profile %s", ago(now, p.Refused.At), shown(p.Refused.AADSTS), shown(p.Refused.Reason), p.Name)
	case p.RotatedAt != nil:
		return fmt.Sprintf("rotated %s, %s left before the 90-day inactivity limit", ago(now, *p.RotatedAt), plural(*p.DaysLeft, "day"))
	}
	return "never rotated"
}

// writeTokenTable writes one profile's cached tokens, indented under its block.
func writeTokenTable(w io.Writer, tokens []statusToken, home string, now time.Time, f statusFilter) error {
	if len(tokens) == 0 {
		what := "none"
		if f.active() {
			what = "none matching " + f.describe()
		}
		_, err := fmt.Fprintf(w, "cached tokens  %s\n", what)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TENANT\tRESOURCE\tEXPIRES")
	for _, t := range tokens {
		tenant := t.Tenant
		if len(t.TenantNames) > 0 && t.TenantID != "" {
			tenant = strings.Join(t.TenantNames, ", ") + " (" + t.TenantID + ")"
		}
		if home != "" && strings.EqualFold(t.TenantID, home) {
			tenant += " (home)"
		}
		resource := t.Alias
		if resource == "" {
			resource = strings.Join(t.Scopes, " ")
		}
		// A cache file is the user's own, but what it names is shown cleaned, as all text read from disk.
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", shown(tenant), shown(resource), expiresText(now, t.ExpiresOn))
	}
	return tw.Flush()
}

func countLine(shown, expired, all int, f statusFilter) string {
	if !f.active() {
		return fmt.Sprintf("%s, %d expired", plural(shown, "cached token"), expired)
	}
	return fmt.Sprintf("%d of %s match %s, %d expired", shown, plural(all, "cached token"), f.describe(), expired)
}

// expiresText is an expiry relative to now: "in 42m", or "expired 3h ago".
func expiresText(now, t time.Time) string {
	if !t.After(now) {
		return "expired " + ago(now, t)
	}
	return "in " + span(t.Sub(now))
}

// ago is how long before now t was: "3h ago", "2 days ago", "just now".
func ago(now, t time.Time) string {
	d := now.Sub(t)
	if d < time.Second {
		return "just now"
	}
	return span(d) + " ago"
}

// span is a duration as a person reads it at a glance: 42s, 42m, 3h 5m, 2 days.
func span(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 24*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh %dm", h, m)
	}
	return plural(int(d/(24*time.Hour)), "day")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
