package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pctoken/pctoken-helper/cloud"
	"github.com/pctoken/pctoken-helper/customers"
	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/settings"
)

// Variables that point the customer-list APIs elsewhere than the cloud's own hosts: a
// sovereign or private deployment, or a test server. https only, scheme and host only.
const (
	graphURLVar         = "PCTOKEN_GRAPH_URL"
	partnerCenterURLVar = "PCTOKEN_PARTNER_CENTER_URL"
)

// TenantsCmd lists the customer tenants the profile's user can reach.
type TenantsCmd struct {
	Source  string        `enum:"auto,graph,partner-center" default:"auto" help:"graph (GDAP relationships), partner-center (customer list), or auto: Graph, else Partner Center when Graph refuses."`
	Output  string        `short:"o" enum:"table,json,ndjson" default:"table" help:"table, json, or ndjson: one get --request line per tenant."`
	Scope   []string      `short:"s" placeholder:"S" help:"With -o ndjson: the scopes each request line asks for (aliases resolve as for get); repeatable."`
	Timeout time.Duration `default:"2m" help:"Bound on the whole listing, retries included."`
}

// tenantLister is what tenants and check --all-tenants share.
type tenantLister struct {
	a       *App
	s       *settings.Profile
	profile string
	source  string
}

// lister resolves the profile and the APIs of its cloud.
func (a *App) lister(source string) (*tenantLister, *customers.Client, error) {
	s, err := a.settingsFor("")
	if err != nil {
		return nil, nil, err
	}
	graph, err := a.apiFor(s.Login, "graph", ".default", graphURLVar)
	if err != nil {
		return nil, nil, err
	}
	pc, err := a.apiFor(s.Login, "partner-center", "user_impersonation", partnerCenterURLVar)
	if err != nil {
		return nil, nil, err
	}
	l := &tenantLister{a: a, s: s, profile: s.Name, source: source}
	c := &customers.Client{
		Tokens:        customers.TokenFunc(l.token),
		Graph:         graph,
		PartnerCenter: pc,
		Logf:          a.logf,
	}
	return l, c, nil
}

// apiFor is an API of cloud c: its scope is the alias's, its URL the scope's resource
// unless the variable overrides it.
func (a *App) apiFor(c cloud.Cloud, alias, perm, variable string) (customers.API, error) {
	scope := c.Scope(alias)
	api := customers.API{URL: strings.TrimSuffix(scope, "/"+perm), Scope: scope}
	if v := a.Getenv(variable); v != "" {
		u, err := cloud.NormalizeAuthorityHost(v)
		if err != nil {
			return customers.API{}, usageError("%s: %w", variable, err)
		}
		api.URL, api.Canonical = u, api.URL
	}
	return api, nil
}

// token gets the partner's own token for an API: the home tenant, from the same
// chain as get.
func (l *tenantLister) token(ctx context.Context, scope string) (string, error) {
	r, _, err := l.a.tokenRequest(l.profile, l.s.HomeTenant, []string{scope}, TokenFlags{MinValidity: 5 * time.Minute})
	if err != nil {
		return "", err
	}
	t, err := l.a.fetch(ctx, r, 0)
	return t.AccessToken, err
}

// list returns the tenants from the chosen source. With auto, Graph is asked first;
// when it refuses (no consent, no permission or role), Partner Center is.
func (l *tenantLister) list(ctx context.Context, c *customers.Client) ([]customers.Tenant, error) {
	if l.source == customers.SourcePartnerCenter {
		ts, err := c.PartnerCenterCustomers(ctx)
		if err != nil {
			return nil, fmt.Errorf("failed to list customers from Partner Center: %w", err)
		}
		customers.SortTenants(ts)
		return ts, nil
	}
	rels, err := c.Relationships(ctx)
	if err != nil {
		if l.source == "auto" && graphRefused(err) {
			l.a.warnf("Microsoft Graph refused the GDAP relationships (%v); listing Partner Center's customers instead", err)
			l.source = customers.SourcePartnerCenter
			return l.list(ctx, c)
		}
		return nil, fmt.Errorf("failed to list GDAP relationships from Microsoft Graph: %w", err)
	}
	l.source = customers.SourceGraph
	l.record(rels)
	return customers.Merge(rels), nil
}

// record keeps the relationships seen for status --warn-days; failing to is a warning.
func (l *tenantLister) record(rels []customers.Relationship) {
	dir, err := l.a.given().ConfigFolder()
	if err == nil {
		err = customers.SaveRecord(dir, customers.Record{
			Profile: l.profile, Source: customers.SourceGraph, SeenAt: l.a.Now().UTC(), Relationships: rels,
		})
	}
	if err != nil {
		l.a.warnf("%v", err)
	}
}

func (t *TenantsCmd) Run(ctx context.Context, a *App) error {
	if t.Timeout < 0 {
		return usageError("--timeout must not be negative")
	}
	l, c, err := a.lister(t.Source)
	if err != nil {
		return err
	}
	// Each line is one get request, and a token is for one resource.
	if err := settings.OneResource(t.scopes(l.s)); err != nil {
		return err
	}
	if t.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.Timeout)
		defer cancel()
	}
	ts, err := l.list(ctx, c)
	if err != nil {
		return err
	}
	switch t.Output {
	case "json":
		return writeTenantsJSON(a.Stdout, ts)
	case "ndjson":
		return writeTenantRequests(a.Stdout, ts, l.profile, t.scopes(l.s))
	}
	return writeTenantsTable(a.Stdout, ts)
}

// scopes are the request lines' scopes: aliases resolved in the profile's cloud, none
// when none were given (get then uses its default).
func (t *TenantsCmd) scopes(s *settings.Profile) []string {
	if len(t.Scope) == 0 {
		return nil
	}
	return settings.Scopes(s.Login, s.Scopes, t.Scope)
}

func writeTenantsJSON(w io.Writer, ts []customers.Tenant) error {
	if ts == nil {
		ts = []customers.Tenant{}
	}
	b, err := json.MarshalIndent(ts, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// tenantRequest is a get --request line.
type tenantRequest struct {
	ID      string   `json:"id"`
	Profile string   `json:"profile"`
	Tenant  string   `json:"tenant"`
	Scopes  []string `json:"scopes,omitempty"`
}

func writeTenantRequests(w io.Writer, ts []customers.Tenant, profileName string, scopes []string) error {
	enc := json.NewEncoder(w)
	for _, t := range ts {
		if err := enc.Encode(tenantRequest{ID: t.ID, Profile: profileName, Tenant: t.ID, Scopes: scopes}); err != nil {
			return err
		}
	}
	return nil
}

func writeTenantsTable(w io.Writer, ts []customers.Tenant) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tNAME\tSTATUS\tENDS\tAUTO-EXTEND\tROLES")
	for _, t := range ts {
		status, ends, ext, roles := orDash(t.Status), "-", "-", orDash(strings.Join(t.Roles, ", "))
		if !t.EndsAt.IsZero() {
			ends = t.EndsAt.UTC().Format("2006-01-02")
		}
		if t.AutoExtend != nil {
			ext = map[bool]string{true: "yes", false: "no"}[*t.AutoExtend]
		}
		if t.Source == customers.SourcePartnerCenter && t.Domain != "" {
			status = "customer (" + t.Domain + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, orDash(t.Name), status, ends, ext, roles)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// graphRefused reports whether Graph itself said no (its API answered 401 or 403), or
// Entra has no consent for Graph's scope, as opposed to a failure of the refresh
// token, which Partner Center would meet just the same.
func graphRefused(err error) bool {
	var se *customers.StatusError
	if errors.As(err, &se) {
		return se.Status == http.StatusUnauthorized || se.Status == http.StatusForbidden
	}
	var e *failure.Error
	return errors.As(err, &e) && e.AADSTS == "65001"
}
