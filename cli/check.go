package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kong"

	"github.com/pctoken/pctoken-helper/customers"
	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/settings"
)

// CheckCmd gets a token per tenant and scope and says which ones fail and why. Its
// tenants come from the global --tenant, repeatable here (see tenantArgs).
type CheckCmd struct {
	TokenFlags
	AllTenants bool   `name:"all-tenants" help:"Check every tenant tenants lists (instead of --tenant T, repeatable)."`
	Source     string `enum:"auto,graph,partner-center" default:"auto" help:"With --all-tenants: where the tenants come from, as for tenants --source."`
	Output     string `short:"o" enum:"table,json,ndjson" default:"table" help:"table, json or ndjson (one row per line, as each completes in order)."`
	Parallel   int    `default:"16" help:"How many token requests run at once."`
}

// checkReport is check's -o json.
type checkReport struct {
	Profile string             `json:"profile"`
	OK      int                `json:"ok"`
	Failed  int                `json:"failed"`
	Results []customers.Result `json:"results"`
}

func (c *CheckCmd) Run(ctx context.Context, a *App, k *kong.Context) error {
	if c.Parallel < 1 {
		return usageError("--parallel must be at least 1")
	}
	if c.MinValidity < 0 || c.Timeout < 0 {
		return usageError("--min-validity and --timeout must not be negative")
	}
	named := tenantArgs(k.Args)
	if len(named) == 0 && a.Tenant != "" && !c.AllTenants {
		named = []string{a.Tenant} // PCTOKEN_TENANT
	}
	switch {
	case c.AllTenants && len(named) > 0:
		return usageError("give either --tenant or --all-tenants, not both")
	case !c.AllTenants && len(named) == 0:
		return usageError("name the tenants to check with --tenant T (repeatable), or pass --all-tenants")
	}
	s, err := a.settingsFor("")
	if err != nil {
		return err
	}
	if s.ClientID == "" {
		return &failure.Error{Kind: failure.ConsentNeeded, Message: "profile " + s.Name + " was never consented (no client id)"}
	}
	scopeList := settings.Scopes(s.Login, s.Scopes, c.Scope) // one probe per scope: one resource per token
	var targets []customers.Tenant
	if c.AllTenants {
		l, lc, err := a.lister(c.Source)
		if err != nil {
			return err
		}
		lctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		targets, err = l.list(lctx, lc)
		cancel()
		if err != nil {
			return err
		}
	} else {
		seen := map[string]bool{}
		for _, t := range named {
			if err := settings.CheckTenant(t); err != nil {
				return err
			}
			if !seen[strings.ToLower(t)] {
				seen[strings.ToLower(t)] = true
				targets = append(targets, customers.Tenant{ID: t})
			}
		}
	}
	var probes []customers.Probe
	for i := range targets {
		t := &targets[i]
		var known *customers.Tenant
		if c.AllTenants {
			known = t
		}
		for _, sc := range scopeList {
			probes = append(probes, customers.Probe{Tenant: t.ID, Scope: sc, Known: known})
		}
	}

	rc := customers.RemedyContext{Profile: s.Name, ClientID: s.ClientID, AuthorityHost: s.Authority, Username: s.Account.Username}
	get := func(ctx context.Context, p customers.Probe) error {
		r, _, err := a.tokenRequest(s.Name, p.Tenant, []string{p.Scope}, c.TokenFlags)
		if err == nil {
			_, err = a.fetch(ctx, r, c.Timeout)
		}
		return err
	}
	bar := a.newProgress(len(probes))
	var progress func(int, int)
	if bar != nil {
		progress = bar.update
	}
	var done func(customers.Result)
	var werr error
	if c.Output == "ndjson" {
		enc := json.NewEncoder(a.Stdout)
		done = func(r customers.Result) {
			if werr == nil {
				bar.clear()
				werr = enc.Encode(r)
			}
		}
	}
	results := customers.Check(ctx, probes, c.Parallel, get, rc.Remedy, done, progress)
	bar.clear()
	if werr != nil {
		return werr
	}
	switch c.Output {
	case "json":
		err = writeCheckJSON(a.Stdout, s.Name, results)
	case "table":
		err = writeCheckTable(a.Stdout, results)
	}
	if err != nil {
		return err
	}
	for _, r := range results {
		if r.Status != customers.OK {
			return silent{exitCode(&failure.Error{Kind: r.Kind})}
		}
	}
	return nil
}

// tenantArgs collects every --tenant given on the command line. The global --tenant
// is one string (kong keeps the last), and a subcommand may not declare a flag of the
// same name, so check reads the repeated flag from the arguments kong parsed: up to
// "--", as "--tenant T" or "--tenant=T".
func tenantArgs(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		switch arg := args[i]; {
		case arg == "--":
			return out
		case arg == "--tenant" && i+1 < len(args):
			out = append(out, args[i+1])
			i++
		case strings.HasPrefix(arg, "--tenant="):
			out = append(out, strings.TrimPrefix(arg, "--tenant="))
		}
	}
	return out
}

func writeCheckJSON(w io.Writer, profileName string, results []customers.Result) error {
	rep := checkReport{Profile: profileName, Results: results}
	if rep.Results == nil {
		rep.Results = []customers.Result{}
	}
	for _, r := range results {
		if r.Status == customers.OK {
			rep.OK++
		} else {
			rep.Failed++
		}
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func writeCheckTable(w io.Writer, results []customers.Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tNAME\tSCOPE\tSTATUS\tCODE\tREMEDY")
	failed := 0
	for _, r := range results {
		if r.Status != customers.OK {
			failed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Tenant, orDash(r.Name), r.Scope, r.Status, orDash(r.AADSTS), orDash(r.Remedy))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d checked, %d ok, %d failing\n", len(results), len(results)-failed, failed)
	return err
}

// progressBar draws "[#####     ] 120/1000" on stderr, only when stderr is a terminal,
// in colour only when NO_COLOR is unset. A nil bar draws nothing.
type progressBar struct {
	mu     sync.Mutex
	w      io.Writer
	colour bool
	last   time.Time
	shown  bool
}

// newProgress returns a bar for a run of total steps, nil when stderr is not a
// terminal (a pipe, a file, a CI log) or the terminal is dumb.
func (a *App) newProgress(total int) *progressBar {
	f, ok := a.liveStderr()
	if !ok || total == 0 {
		return nil
	}
	return &progressBar{w: f, colour: a.colour()}
}

const progressWidth = 30

func (p *progressBar) update(done, total int) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// Redrawing at most ten times a second keeps a fast run from flooding the terminal.
	if now := time.Now(); done < total && now.Sub(p.last) < 100*time.Millisecond && p.shown {
		return
	} else {
		p.last = now
	}
	filled := progressWidth * done / max(total, 1)
	bar := strings.Repeat("#", filled) + strings.Repeat(" ", progressWidth-filled)
	if p.colour {
		bar = "\x1b[32m" + strings.Repeat("#", filled) + "\x1b[0m" + strings.Repeat(" ", progressWidth-filled)
	}
	fmt.Fprintf(p.w, "\rchecking [%s] %d/%d", bar, done, total)
	p.shown = true
}

// clear erases the bar, so that what follows starts on a clean line.
func (p *progressBar) clear() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", progressWidth+40))
		p.shown = false
	}
}
