package entrasim

import (
	"cmp"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// serveControl exposes the controls under /_sim/ for another process (Options.ControlAPI):
//
//	POST /_sim/expire                     ExpireRefreshTokens
//	POST /_sim/revoke                     RevokeRefreshTokens
//	POST /_sim/mfa?on=1                   RequireMFA
//	POST /_sim/consent?on=1               RequireConsent
//	POST /_sim/amr?values=pwd,mfa         SetAMR
//	POST /_sim/fail?n=2&status=503        FailNext
//	POST /_sim/throttle?n=1&retry_after=2 ThrottleNext (seconds or a duration)
//	POST /_sim/hang?n=1                   HangNext
//	POST /_sim/latency?d=50ms             SetLatency
//	POST /_sim/lifetime?d=10m             SetTokenLifetime
//	POST /_sim/strict?on=1                SetStrictRotation
//	POST /_sim/autoapprove?on=0           ApproveDeviceCodes
//	POST /_sim/approve?user_code=X        ApproveDeviceCode
//	POST /_sim/tenant?id=&domain=&access=1 AddTenant / AddTenantNoAccess
//	POST /_sim/reset-stats                ResetStats
//	GET  /_sim/stats                      Stats as JSON
//	GET  /_sim/last-authorize             LastAuthorize as JSON
//	GET  /_sim/last-device-code           LastDeviceCode as JSON
//	POST /_sim/validate (body: token)     ValidateAccessToken, claims as JSON or 401
//	POST /_sim/refresh-token-valid (body) RefreshTokenValid as {"valid":bool}
//
// Tokens travel in bodies, never in URLs, so they stay out of logs. "on" defaults to 1.
func (s *Sim) serveControl(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/_sim/")
	q := r.URL.Query()
	reads := map[string]bool{"stats": true, "last-authorize": true, "last-device-code": true}
	if reads[name] != (r.Method == http.MethodGet) {
		controlErr(w, http.StatusMethodNotAllowed, fmt.Errorf("%s: wrong method %s", name, r.Method))
		return
	}
	var err error
	switch name {
	case "stats":
		writeJSON(w, http.StatusOK, s.Stats())
		return
	case "last-authorize":
		rec, ok := s.LastAuthorize()
		writeFound(w, rec, ok)
		return
	case "last-device-code":
		rec, ok := s.LastDeviceCode()
		writeFound(w, rec, ok)
		return
	case "validate":
		body, rerr := readSmall(w, r)
		if rerr != nil {
			controlErr(w, http.StatusBadRequest, rerr)
			return
		}
		claims, verr := s.ValidateAccessToken(strings.TrimSpace(string(body)))
		if verr != nil {
			controlErr(w, http.StatusUnauthorized, verr)
			return
		}
		writeJSON(w, http.StatusOK, claims)
		return
	case "refresh-token-valid":
		body, rerr := readSmall(w, r)
		if rerr != nil {
			controlErr(w, http.StatusBadRequest, rerr)
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"valid": s.RefreshTokenValid(strings.TrimSpace(string(body)))})
		return
	case "expire":
		s.ExpireRefreshTokens()
	case "revoke":
		s.RevokeRefreshTokens()
	case "reset-stats":
		s.ResetStats()
	case "mfa":
		err = withBool(q.Get("on"), s.RequireMFA)
	case "consent":
		err = withBool(q.Get("on"), s.RequireConsent)
	case "strict":
		err = withBool(q.Get("on"), s.SetStrictRotation)
	case "autoapprove":
		err = withBool(q.Get("on"), s.ApproveDeviceCodes)
	case "amr":
		var amr []string
		for _, v := range strings.Split(q.Get("values"), ",") {
			if v = strings.TrimSpace(v); v != "" {
				amr = append(amr, v)
			}
		}
		s.SetAMR(amr)
	case "fail":
		var n, status int
		if n, err = strconv.Atoi(q.Get("n")); err == nil {
			status, err = strconv.Atoi(cmp.Or(q.Get("status"), "500"))
		}
		if err == nil {
			s.FailNext(n, status)
		}
	case "throttle":
		var n int
		var ra time.Duration
		if n, err = strconv.Atoi(q.Get("n")); err == nil {
			ra, err = parseSeconds(cmp.Or(q.Get("retry_after"), "1"))
		}
		if err == nil {
			s.ThrottleNext(n, ra)
		}
	case "hang":
		var n int
		if n, err = strconv.Atoi(q.Get("n")); err == nil {
			s.HangNext(n)
		}
	case "latency":
		var d time.Duration
		if d, err = parseSeconds(q.Get("d")); err == nil {
			s.SetLatency(d)
		}
	case "lifetime":
		var d time.Duration
		if d, err = parseSeconds(q.Get("d")); err == nil {
			s.SetTokenLifetime(d)
		}
	case "approve":
		err = s.ApproveDeviceCode(q.Get("user_code"))
	case "tenant":
		id, domain := q.Get("id"), q.Get("domain")
		if !looksLikeGUID(id) {
			err = fmt.Errorf("tenant id %q is not a GUID", id)
			break
		}
		err = withBool(q.Get("access"), func(access bool) {
			if access {
				s.AddTenant(id, domain)
			} else {
				s.AddTenantNoAccess(id, domain)
			}
		})
	default:
		controlErr(w, http.StatusNotFound, fmt.Errorf("unknown control %q", name))
		return
	}
	if err != nil {
		controlErr(w, http.StatusBadRequest, fmt.Errorf("%s: %w", name, err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func writeFound(w http.ResponseWriter, v any, ok bool) {
	if !ok {
		controlErr(w, http.StatusNotFound, fmt.Errorf("nothing recorded yet"))
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func controlErr(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func readSmall(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBytes))
}

// withBool parses an on/off value (default on) and hands it to set.
func withBool(v string, set func(bool)) error {
	switch strings.ToLower(v) {
	case "", "on", "yes":
		set(true)
		return nil
	case "off", "no":
		set(false)
		return nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return err
	}
	set(b)
	return nil
}

// parseSeconds takes a Go duration ("50ms", "10m") or a plain number of seconds.
func parseSeconds(v string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Duration(n * float64(time.Second)), nil
	}
	return time.ParseDuration(v)
}
