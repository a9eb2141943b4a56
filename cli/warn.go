package cli

import (
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

// expiryWarnings lists what needs attention within d, for the profiles status
// collected: refresh tokens refused or near their inactivity limit, and GDAP
// relationships (as the last tenants recorded them) that do not extend themselves.
func (a *App) expiryWarnings(profiles []statusProfile, d time.Duration) ([]statusWarning, error) {
	cfg, err := a.given().ConfigFolder()
	if err != nil {
		return nil, err
	}
	now := a.Now()
	var out []statusWarning
	for _, p := range profiles {
		name := p.Name
		switch {
		case p.Refused != nil:
			out = append(out, statusWarning{Profile: name, Kind: "refresh_token", EndsAt: p.Refused.At, DaysLeft: 0,
				Message: fmt.Sprintf("the refresh token was refused %s (AADSTS%s: %s): consent is needed", p.Refused.At.Format(time.RFC3339), p.Refused.AADSTS, p.Refused.Reason),
				Remedy:  "pctoken-helper consent --profile " + name})
		case p.RotatedAt != nil:
			ends := p.RotatedAt.Add(profile.InactivityLimit)
			if ends.Before(now.Add(d)) {
				days := *p.DaysLeft
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
