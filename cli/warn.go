package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pctoken/pctoken-helper/customers"
	"github.com/pctoken/pctoken-helper/profile"
)

// statusWarning is one reason status --warn-days fires.
type statusWarning struct {
	Profile  string    `json:"profile"`
	Kind     string    `json:"kind"` // refresh_token or gdap_relationship
	Tenant   string    `json:"tenant,omitempty"`
	Name     string    `json:"name,omitempty"`
	EndsAt   time.Time `json:"ends_at"`
	DaysLeft int       `json:"days_left"`
	Message  string    `json:"message"`
	Remedy   string    `json:"remedy"`
}

// runWarnings is status --warn-days N: the usual status on stdout (with "warnings"
// added to -o json), each warning on stderr, and exit 3 when there is any.
func (s *StatusCmd) runWarnings(a *App) error {
	if s.WarnDays < 0 {
		return usageError("--warn-days must not be negative")
	}
	var buf bytes.Buffer
	out := a.Stdout
	a.Stdout, s.warning = &buf, true
	err := s.Run(a)
	a.Stdout, s.warning = out, false
	if err != nil {
		return err
	}
	warnings, err := a.expiryWarnings(time.Duration(s.WarnDays) * 24 * time.Hour)
	if err != nil {
		return err
	}
	if s.Output == "json" {
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
			return fmt.Errorf("failed to add warnings to the status: %w", err)
		}
		if warnings == nil {
			warnings = []statusWarning{}
		}
		w, _ := json.Marshal(warnings)
		doc["warnings"] = w
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(doc); err != nil {
			return err
		}
	} else if _, err := out.Write(buf.Bytes()); err != nil {
		return err
	}
	for _, w := range warnings {
		fmt.Fprintf(a.Stderr, "warning: profile %s: %s\nhint: %s\n", w.Profile, w.Message, w.Remedy)
	}
	if len(warnings) > 0 {
		return silent{exitConsent}
	}
	return nil
}

// expiryWarnings lists what ends within d: refresh tokens near their inactivity limit,
// and GDAP relationships (as the last tenants recorded them) that do not extend
// themselves. With --profile, only that profile's.
func (a *App) expiryWarnings(d time.Duration) ([]statusWarning, error) {
	dir, err := a.profileDir()
	if err != nil {
		return nil, err
	}
	cfg, err := a.configDir()
	if err != nil {
		return nil, err
	}
	names, err := dir.List()
	if err != nil {
		return nil, configError("%w", err)
	}
	if a.Profile != "" {
		names = []string{a.Profile}
	}
	now := a.Now()
	var out []statusWarning
	for _, name := range names {
		p, err := dir.Load(name)
		if errors.Is(err, profile.ErrNotFound) {
			return nil, usageError("no profile %s", name)
		}
		if err != nil {
			a.warnf("%v", err)
			continue
		}
		if !p.RotatedAt.IsZero() {
			ends := p.RotatedAt.Add(profile.InactivityLimit)
			if ends.Before(now.Add(d)) {
				days := p.DaysLeft(now)
				msg := fmt.Sprintf("the refresh token ends %s (in %d days) unless it is used: 90 days of inactivity", ends.UTC().Format("2006-01-02"), days)
				remedy := "pctoken-helper renew --profile " + name + " (and schedule it: docs/renew.md)"
				if days <= 0 {
					msg = fmt.Sprintf("the refresh token expired %s after 90 days of inactivity", ends.UTC().Format("2006-01-02"))
					remedy = "pctoken-helper consent --profile " + name
				}
				out = append(out, statusWarning{Profile: name, Kind: "refresh_token", EndsAt: ends.UTC(), DaysLeft: days, Message: msg, Remedy: remedy})
			}
		}
		rec, err := customers.LoadRecord(cfg, name)
		if errors.Is(err, customers.ErrNoRecord) {
			continue
		}
		if err != nil {
			a.warnf("%v", err)
			continue
		}
		for _, r := range rec.EndingWithin(now, d) {
			days := daysUntil(now, r.EndDateTime)
			who := r.TenantID
			if r.Name != "" {
				who = r.Name + " (" + r.TenantID + ")"
			}
			out = append(out, statusWarning{
				Profile: name, Kind: "gdap_relationship", Tenant: r.TenantID, Name: r.Name, EndsAt: r.EndDateTime, DaysLeft: days,
				Message: fmt.Sprintf("the GDAP relationship with %s ends %s (in %d days) and does not extend itself (as tenants saw it on %s)", who, r.EndDateTime.Format("2006-01-02"), days, rec.SeenAt.UTC().Format("2006-01-02")),
				Remedy:  "in Partner Center (Customers > the customer > Admin relationships), turn on auto-extend or request a new relationship; then pctoken-helper tenants --profile " + name,
			})
		}
	}
	return out, nil
}

// daysUntil counts started days from now to t (0 once t has passed).
func daysUntil(now, t time.Time) int {
	const day = 24 * time.Hour
	left := t.Sub(now)
	if left <= 0 {
		return 0
	}
	return int((left + day - 1) / day)
}
