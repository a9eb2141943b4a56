package customers

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/pctoken/pctoken-helper/failure"
)

// The classes of check, each row's status.
const (
	OK                = "ok"
	ConsentMissing    = "consent_missing"
	NoDelegatedAccess = "no_delegated_access"
	MFARequired       = "mfa_required"
	BlockedByPolicy   = "blocked_by_policy"
	AppUnknown        = "app_unknown"
	Transient         = "transient"
	// Failed is any other failure (the stored refresh token expired or was revoked,
	// a bad client secret, ...): not about one tenant, so its remedy is the general one.
	Failed = "failed"
)

// classes maps the AADSTS codes Entra returns when a refresh token is redeemed in a
// customer tenant to a class. Sources: Microsoft Entra authentication and
// authorization error codes (learn.microsoft.com/entra/identity-platform/reference-error-codes),
// "Unexpected error when performing consent to an application"
// (learn.microsoft.com/entra/identity/enterprise-apps/application-sign-in-unexpected-user-consent-error),
// and the field notes (docs/errors.md lists them for users).
var classes = map[string]string{
	// Consent: the app, or the resource it asks for, is not consented in that tenant.
	"65001":  ConsentMissing, // the user or administrator has not consented to the app
	"65004":  ConsentMissing, // the user declined consent
	"65005":  ConsentMissing, // the app asks for a resource not available (not consented) in the tenant
	"90093":  ConsentMissing, // the app asks for permissions the user may not grant
	"90094":  ConsentMissing, // admin consent required
	"90099":  ConsentMissing, // the app is not authorized in the tenant for partner delegated admins
	"500011": ConsentMissing, // the resource's service principal is not in the tenant
	"650052": ConsentMissing, // the app needs a service the tenant has not enabled or consented
	"650056": ConsentMissing, // misconfigured app, or the administrator has not consented

	// No delegated access: the partner's user does not exist in the customer tenant,
	// which is what a missing, expired or terminated GDAP relationship (or one without
	// the user's security group) looks like to Entra.
	"50020": NoDelegatedAccess, // user account from identity provider does not exist in tenant
	"50034": NoDelegatedAccess, // the user account does not exist in the directory
	"50177": NoDelegatedAccess, // external user (passthrough) cannot be challenged in that tenant
	"90072": NoDelegatedAccess, // the external account does not exist in the tenant (PassThroughUserMfaError)

	// MFA and sign-in frequency: a person must sign in again, with MFA.
	"50072": MFARequired, // the user must enrol in MFA
	"50074": MFARequired, // strong authentication required
	"50076": MFARequired, // MFA required (location or policy change)
	"50078": MFARequired, // the MFA claim expired
	"50079": MFARequired, // the user must enrol in MFA
	"50158": MFARequired, // an external security challenge was not satisfied
	"70043": MFARequired, // sign-in frequency: the refresh token expired under a CA policy

	// Conditional Access of the customer blocks the sign-in.
	"53000": BlockedByPolicy, // device not compliant
	"53001": BlockedByPolicy, // device not domain joined
	"53002": BlockedByPolicy, // the client app is not approved
	"53003": BlockedByPolicy, // blocked by Conditional Access
	"53004": BlockedByPolicy, // proof-up blocked (risky sign-in)

	// The app is unknown or disabled in that tenant.
	"700016":  AppUnknown, // application not found in the directory
	"7000112": AppUnknown, // application disabled
	"500014":  AppUnknown, // the resource's service principal is disabled
	"50194":   AppUnknown, // the app is not multi-tenant
}

// Outcome is the classification of one token request.
type Outcome struct {
	Status  string
	AADSTS  string       // without the prefix, "" when there is none
	Kind    failure.Kind // what the exit code is made of
	Message string
}

// Classify turns the error of a token request into its class; nil is OK.
func Classify(err error) Outcome {
	if err == nil {
		return Outcome{Status: OK}
	}
	o := Outcome{Status: Failed, Kind: failure.KindOf(err), Message: err.Error()}
	var e *failure.Error
	if errors.As(err, &e) {
		o.AADSTS, o.Message = e.AADSTS, e.Message
	}
	if c, ok := classes[o.AADSTS]; ok {
		o.Status = c
	} else if o.Kind == failure.Transient {
		o.Status = Transient
	}
	o.Kind = KindOf(o.Status, o.Kind)
	return o
}

// KindOf is the failure kind of a class, which cli maps to the exit code: consent and
// MFA need a person (3); no delegated access, a Conditional Access block and an unknown
// app need a change of configuration in Partner Center or the customer's tenant (5);
// transient failures may pass (4). Failed keeps the kind of its error.
func KindOf(status string, other failure.Kind) failure.Kind {
	switch status {
	case OK:
		return failure.Unexpected // unused: an ok row fails nothing
	case ConsentMissing, MFARequired:
		return failure.ConsentNeeded
	case NoDelegatedAccess, BlockedByPolicy, AppUnknown:
		return failure.Configuration
	case Transient:
		return failure.Transient
	}
	return other
}

// Probe is one token request of check: a tenant and a scope.
type Probe struct {
	Tenant string
	Scope  string
	// Known is what tenants listed about the tenant, nil when it was named by hand.
	Known *Tenant
}

// Result is one row of check's output. Rows are stable from day to day for the same
// state: no times, no trace ids.
type Result struct {
	Tenant  string `json:"tenant"`
	Name    string `json:"name,omitempty"`
	Scope   string `json:"scope"`
	Status  string `json:"status"`
	AADSTS  string `json:"aadsts,omitempty"`
	Message string `json:"message,omitempty"`
	Remedy  string `json:"remedy,omitempty"`

	Kind failure.Kind `json:"-"`
}

// Check runs get for every probe, at most parallel at a time, and returns one result
// per probe in the probes' order. done, when set, receives each result in that order
// as soon as it and every earlier one are in (for streamed output); progress, when
// set, is called after each completion with the count so far. Both are called from
// one goroutine at a time. Throttling is handled per request by the token chain's
// transport (Retry-After honoured, bounded retries), as for get --request.
func Check(ctx context.Context, probes []Probe, parallel int, get func(context.Context, Probe) error,
	remedy func(Probe, Outcome) string, done func(Result), progress func(finished, total int)) []Result {
	if parallel < 1 {
		parallel = 1
	}
	results := make([]Result, len(probes))
	ready := make([]bool, len(probes))
	var (
		mu       sync.Mutex
		next     int
		finished int
		wg       sync.WaitGroup
		slots    = make(chan struct{}, parallel)
	)
	for i, p := range probes {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			o := Classify(get(ctx, p))
			r := Result{Tenant: p.Tenant, Scope: p.Scope, Status: o.Status, Kind: o.Kind}
			if p.Known != nil {
				r.Name = p.Known.Name
			}
			if o.Status != OK {
				r.AADSTS, r.Message = o.AADSTS, Clean(o.Message, 500)
				if r.AADSTS != "" {
					r.AADSTS = "AADSTS" + r.AADSTS
				}
				if remedy != nil {
					r.Remedy = remedy(p, o)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			results[i], ready[i] = r, true
			finished++
			if progress != nil {
				progress(finished, len(probes))
			}
			for next < len(probes) && ready[next] {
				if done != nil {
					done(results[next])
				}
				next++
			}
		}()
	}
	wg.Wait()
	return results
}

// RemedyContext is what the remedies name: the profile, its app and authority host.
type RemedyContext struct {
	Profile       string
	ClientID      string
	AuthorityHost string // e.g. https://login.microsoftonline.com
	Username      string
}

// AdminConsentURL is where an administrator of tenant grants the app tenant-wide
// consent.
func (rc RemedyContext) AdminConsentURL(tenant string) string {
	return strings.TrimRight(rc.AuthorityHost, "/") + "/" + url.PathEscape(tenant) + "/adminconsent?client_id=" + url.QueryEscape(rc.ClientID)
}

// Remedy is the fix for a failing row: a URL, a relationship to add, or a command.
func (rc RemedyContext) Remedy(p Probe, o Outcome) string {
	who := "the signed-in user"
	if rc.Username != "" {
		who = rc.Username
	}
	switch o.Status {
	case ConsentMissing:
		return "an administrator of the customer grants consent: " + rc.AdminConsentURL(p.Tenant)
	case NoDelegatedAccess:
		if k := p.Known; k != nil && pending(k.Status) {
			return fmt.Sprintf("the GDAP relationship with this customer is %s: an administrator of the customer approves it in the Microsoft 365 admin center (Settings > Partner relationships), then it grants %s", k.Status, RoleFor(p.Scope))
		}
		rel := "a GDAP relationship with this customer"
		if k := p.Known; k != nil && k.Status != "" && !grantsAccess(k.Status) {
			rel = fmt.Sprintf("a new GDAP relationship (the last one is %s", k.Status)
			if !k.EndsAt.IsZero() {
				rel += ", ended " + k.EndsAt.UTC().Format("2006-01-02")
			}
			rel += ")"
		}
		return fmt.Sprintf("in Partner Center (Customers > the customer > Admin relationships), request %s whose roles include %s, and assign it to a security group holding %s", rel, RoleFor(p.Scope), who)
	case MFARequired:
		return "sign in again with MFA: pctoken-helper consent --profile " + rc.Profile
	case BlockedByPolicy:
		return "the customer's Conditional Access blocks this sign-in: ask its administrator to exclude service provider users (or this app) from the policy, or run where the policy allows"
	case AppUnknown:
		return "the app " + rc.ClientID + " is missing or disabled in that tenant: an administrator of the customer consents to it (" + rc.AdminConsentURL(p.Tenant) + ") or enables it under Enterprise applications"
	case Transient:
		return "try again later: pctoken-helper check --profile " + rc.Profile + " --tenant " + p.Tenant
	}
	return ""
}

// pending reports whether a relationship in this status waits for the customer's
// approval or for its activation.
func pending(status string) bool {
	switch strings.ToLower(status) {
	case "created", "approvalpending", "approved", "activating":
		return true
	}
	return false
}

// RoleFor suggests the least GDAP role that lets a job use scope's resource.
func RoleFor(scope string) string {
	s := strings.ToLower(scope)
	switch {
	case strings.Contains(s, "graph."), strings.Contains(s, "microsoftgraph."):
		return "Global Reader (or the Entra role the job's Graph calls need)"
	case strings.Contains(s, "outlook."):
		return "Exchange Administrator"
	case strings.Contains(s, "management."):
		return "an Entra role, plus an Azure RBAC role on the subscriptions (through the Admin Agents or a GDAP security group)"
	case strings.Contains(s, "partnercenter"):
		return "a role Partner Center accepts for the customer (e.g. Global Reader)"
	}
	return "a role that covers " + scope
}
