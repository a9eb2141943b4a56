package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"time"

	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/idphttp"
	"github.com/pctoken/pctoken-helper/internal/safefs"
	"github.com/pctoken/pctoken-helper/profile"
	"github.com/pctoken/pctoken-helper/securestore"
)

// DoctorCmd checks, per profile, everything a silent refresh depends on, and says
// what to fix (git-credential-manager's diagnose).
type DoctorCmd struct {
	Output  string        `short:"o" enum:"text,json" default:"text" help:"text or json."`
	Timeout time.Duration `default:"30s" help:"Bound on each network check."`
}

// Outcomes of a check.
const (
	checkOK   = "ok"
	checkWarn = "warn"
	checkFail = "fail"
	checkSkip = "skip"
)

// maxClockSkew is how far this machine's clock may stray from the identity
// provider's before doctor fails: cached tokens are judged fresh by this clock, so a
// clock minutes behind hands out expired tokens. warnClockSkew allows for the Date
// header's one-second resolution and a slow network.
const (
	maxClockSkew  = 5 * time.Minute
	warnClockSkew = time.Minute
)

// checkResult is one line of doctor's report.
type checkResult struct {
	Profile string `json:"profile,omitempty"`
	Check   string `json:"check"`
	Status  string `json:"status"`
	Detail  string `json:"detail"`
	Fix     string `json:"fix,omitempty"`
	Code    string `json:"code,omitempty"`
	AADSTS  string `json:"aadsts,omitempty"`

	err error // the failure, for the exit code
}

func (c *DoctorCmd) Run(ctx context.Context, a *App) error {
	results := a.diagnose(ctx, c.Timeout)
	var err error
	if c.Output == "json" {
		err = writeDoctorJSON(a.Stdout, results)
	} else {
		err = writeDoctorText(a.Stdout, results)
	}
	if err != nil {
		return err
	}
	for _, r := range results {
		if r.Status == checkFail {
			return silent{exitCode(r.err)}
		}
	}
	return nil
}

// diagnose runs the checks: the folders once, then each profile's (the given one,
// else every saved one).
func (a *App) diagnose(ctx context.Context, timeout time.Duration) []checkResult {
	var out []checkResult
	add := func(r checkResult) { out = append(out, r) }

	add(a.checkFolder("config folder", "--config-dir", a.given().ConfigFolder))
	add(a.checkFolder("cache folder", "--cache-dir", a.given().CacheFolder))

	dir, err := a.given().Profiles()
	if err != nil {
		return append(out, failed("", "profiles", err, a.remedy(err)))
	}
	saved, err := dir.List()
	if err != nil {
		return append(out, failed("", "profiles", configError("%w", err), ""))
	}
	ciMode := a.Getenv("PCTOKEN_REFRESH_TOKEN") != ""
	names := saved
	if a.Profile != "" || len(saved) == 0 && ciMode {
		names = []string{a.profileName("")}
	}
	if len(names) == 0 {
		err := &failure.Error{Kind: failure.ConsentNeeded, Message: "no profile was ever saved"}
		return append(out, failed("", "profiles", err, "pctoken-helper consent --client-id ID"))
	}
	for _, name := range names {
		out = append(out, a.diagnoseProfile(ctx, name, saved, timeout)...)
	}
	return out
}

func (a *App) checkFolder(what, flag string, folder func() (string, error)) checkResult {
	dir, err := folder()
	if err != nil {
		return failed("", what, err, a.remedy(err))
	}
	_, err = safefs.CheckDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return checkResult{Check: what, Status: checkWarn, Detail: dir + " does not exist yet (it is created on first use)"}
	case err != nil:
		fix := safefs.RemedyOf(err)
		if fix == "" {
			fix = "choose a folder of your own with " + flag
		}
		return failed("", what, failure.Errorf(failure.Configuration, "%w", err), fix)
	}
	return checkResult{Check: what, Status: checkOK, Detail: dir + " is yours and closed to other users"}
}

func (a *App) diagnoseProfile(ctx context.Context, name string, saved []string, timeout time.Duration) []checkResult {
	var out []checkResult
	fail := func(check string, err error) []checkResult {
		err = failure.WithProfile(err, name)
		return append(out, failed(name, check, err, a.remedy(err)))
	}
	if err := profile.ValidName(name); err != nil {
		return fail("profile", usageError("%w", err))
	}
	s, err := a.settingsFor(name)
	if err != nil {
		return fail("profile", err)
	}
	ciMode := a.Getenv("PCTOKEN_REFRESH_TOKEN") != ""
	switch {
	case !s.Saved && !ciMode:
		err := unknownProfile(name, saved, profile.ErrNotFound)
		return append(out, failed(name, "profile", err, a.remedy(err)))
	case !s.Saved && s.ClientID == "":
		return fail("profile", usageError("CI mode needs the application id: pass --client-id ID or set PCTOKEN_CLIENT_ID"))
	case !s.Saved:
		out = append(out, checkResult{Profile: name, Check: "profile", Status: checkOK,
			Detail: fmt.Sprintf("CI mode, not saved: client %s from flags and variables", s.ClientID)})
	default:
		out = append(out, checkResult{Profile: name, Check: "profile", Status: checkOK,
			Detail: fmt.Sprintf("client %s, account %s, home tenant %s", s.ClientID, orDefault(s.Account.Username, "-"), orDefault(s.HomeTenant, "-"))})
	}

	// The store and its passphrase: can the refresh token be read? (It is never shown.)
	storeOK := false
	if ciMode {
		out = append(out, checkResult{Profile: name, Check: "store", Status: checkOK, Detail: "CI mode: the refresh token comes from PCTOKEN_REFRESH_TOKEN"})
		storeOK = true
	} else if st, used, err := a.secureStore(s); err != nil {
		out = fail("store", err)
	} else if _, err := st.Get(refreshKey(name)); errors.Is(err, securestore.ErrNotFound) {
		out = fail("store", &failure.Error{Kind: failure.ConsentNeeded, Message: fmt.Sprintf("the %s store holds no refresh token for profile %s", used, name), Err: err})
	} else if err != nil {
		out = fail("store", storeError(err))
	} else {
		out = append(out, checkResult{Profile: name, Check: "store", Status: checkOK, Detail: fmt.Sprintf("the refresh token can be read from the %s store", used)})
		storeOK = true
	}

	// TLS to the authority, through the transport the helper uses, and the clock.
	tenant := firstOf(s.HomeTenant, "organizations")
	url := s.Authority + "/" + tenant + "/v2.0/.well-known/openid-configuration"
	date, err := a.fetchOpenIDConfiguration(ctx, url, timeout)
	reachable := err == nil
	if err != nil {
		out = fail("tls", err)
		out = append(out, checkResult{Profile: name, Check: "clock", Status: checkSkip, Detail: "needs an answer from the authority"})
	} else {
		out = append(out, checkResult{Profile: name, Check: "tls", Status: checkOK, Detail: url + " answered over verified TLS"})
		out = append(out, a.checkClock(name, date))
	}

	// A live refresh, as renew does: one redemption, the rotated token saved.
	if !storeOK || !reachable {
		return append(out, checkResult{Profile: name, Check: "refresh", Status: checkSkip, Detail: "needs the store and the authority"})
	}
	req, _, err := a.tokenRequest(name, "", nil, TokenFlags{ForceRefresh: true, MinValidity: 5 * time.Minute})
	if err == nil {
		_, err = a.fetch(ctx, req, timeout)
	}
	if err != nil {
		return fail("refresh", err)
	}
	detail := "the refresh token was redeemed and its successor saved"
	if p, err := a.given().Profiles(); err == nil {
		if pp, err := p.Load(name); err == nil && !pp.RotatedAt.IsZero() {
			detail += fmt.Sprintf(": %d days left", pp.DaysLeft(a.Now()))
		}
	}
	return append(out, checkResult{Profile: name, Check: "refresh", Status: checkOK, Detail: detail})
}

// fetchOpenIDConfiguration GETs the authority's metadata document live (no copy
// kept on disk), through the retrying transport the helper uses, and returns the
// server's Date.
func (a *App) fetchOpenIDConfiguration(ctx context.Context, url string, timeout time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := idphttp.NewClient("", idphttp.RetryOptions{Logf: a.logf}, a.logf)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return time.Time{}, usageError("invalid authority: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		kind := failure.Configuration
		if idphttp.IsTransient(err) {
			kind = failure.Transient
		}
		return time.Time{}, failure.Errorf(kind, "failed to reach the authority: %w", err)
	}
	defer resp.Body.Close()
	var doc struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	body := io.LimitReader(resp.Body, 1<<20)
	if resp.StatusCode != http.StatusOK {
		kind := failure.Configuration
		if idphttp.IsTransientStatus(resp.StatusCode) {
			kind = failure.Transient
		}
		return time.Time{}, failure.Errorf(kind, "the authority answered %s to %s", shown(resp.Status), url)
	}
	if err := json.NewDecoder(body).Decode(&doc); err != nil || doc.TokenEndpoint == "" {
		return time.Time{}, failure.Errorf(failure.Configuration, "the authority's openid-configuration is not usable (no token_endpoint): is --authority-host an Entra ID login host?")
	}
	date, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return time.Time{}, nil
	}
	return date, nil
}

func (a *App) checkClock(name string, server time.Time) checkResult {
	r := checkResult{Profile: name, Check: "clock"}
	if server.IsZero() {
		r.Status, r.Detail = checkWarn, "the authority sent no Date header to compare with"
		return r
	}
	skew := a.Now().Sub(server).Round(time.Second)
	abs := skew
	if abs < 0 {
		abs = -abs
	}
	way := "ahead of"
	if skew < 0 {
		way = "behind"
	}
	switch {
	case abs > maxClockSkew:
		err := failure.Errorf(failure.Configuration, "this machine's clock is %s %s the identity provider's", abs, way)
		return failed(name, "clock", err, "synchronise the clock (e.g. timedatectl set-ntp true)")
	case abs > warnClockSkew:
		r.Status, r.Detail, r.Fix = checkWarn, fmt.Sprintf("this machine's clock is %s %s the identity provider's", abs, way), "synchronise the clock (e.g. timedatectl set-ntp true)"
	default:
		r.Status, r.Detail = checkOK, fmt.Sprintf("within %s of the identity provider's", warnClockSkew)
	}
	return r
}

func failed(profileName, check string, err error, fix string) checkResult {
	r := checkResult{Profile: profileName, Check: check, Status: checkFail, Detail: err.Error(), Fix: fix, err: err}
	r.Code = failure.KindOf(err).String()
	var e *failure.Error
	if errors.As(err, &e) && e.AADSTS != "" {
		r.AADSTS = "AADSTS" + e.AADSTS
	}
	return r
}

func writeDoctorJSON(w io.Writer, results []checkResult) error {
	ok := true
	for _, r := range results {
		ok = ok && r.Status != checkFail
	}
	return writeJSON(w, map[string]any{"ok": ok, "checks": results})
}

func writeDoctorText(w io.Writer, results []checkResult) error {
	last := "\x00"
	for _, r := range results {
		if r.Profile != last {
			if r.Profile == "" {
				fmt.Fprintln(w, "general")
			} else {
				fmt.Fprintf(w, "profile %s\n", r.Profile)
			}
			last = r.Profile
		}
		fmt.Fprintf(w, "  %-4s  %-13s  %s\n", r.Status, r.Check, r.Detail)
		if r.Fix != "" {
			fmt.Fprintf(w, "  %-4s  %-13s  fix: %s\n", "", "", r.Fix)
		}
	}
	_, err := fmt.Fprintln(w)
	return err
}
