package entrasim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// aadError is an error as Entra ID's endpoints send it. Handlers return one and the
// endpoint writes it once, with the request's trace and correlation ids.
type aadError struct {
	status   int    // HTTP status; 400 unless set
	err      string // the OAuth "error" field
	code     int    // the AADSTS number
	text     string
	suberror string
	claims   string // a claims challenge, sent with MFA errors
}

// newErr builds an error with the usual status for its kind: 401 for a client that
// failed to authenticate, 400 for everything else.
func newErr(oauthErr string, code int, format string, args ...any) *aadError {
	status := http.StatusBadRequest
	if oauthErr == "invalid_client" {
		status = http.StatusUnauthorized
	}
	return &aadError{status: status, err: oauthErr, code: code, text: fmt.Sprintf(format, args...)}
}

func (e *aadError) withSuberror(sub string) *aadError { e.suberror = sub; return e }

// entraTime is the layout of Entra's error timestamps, e.g. "2024-05-01 12:00:00Z".
const entraTime = "2006-01-02 15:04:05Z"

// errorBody is the JSON body, fields in the order Entra sends them.
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
	ErrorURI         string `json:"error_uri"`
	Suberror         string `json:"suberror,omitempty"`
	Claims           string `json:"claims,omitempty"`
}

func (s *Sim) errorBody(e *aadError, rc *reqCtx) errorBody {
	ts := s.now().UTC().Format(entraTime)
	return errorBody{
		Error: e.err,
		ErrorDescription: fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s",
			e.code, e.text, rc.traceID, rc.correlationID, ts),
		ErrorCodes:    []int{e.code},
		Timestamp:     ts,
		TraceID:       rc.traceID,
		CorrelationID: rc.correlationID,
		ErrorURI:      s.url + "/error?code=" + strconv.Itoa(e.code),
		Suberror:      e.suberror,
		Claims:        e.claims,
	}
}

// writeError answers with e and counts it.
func (s *Sim) writeError(w http.ResponseWriter, rc *reqCtx, e *aadError) {
	s.countError(rc, e)
	writeJSON(w, e.status, s.errorBody(e, rc))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store, no-cache")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// The errors the simulator sends, worded as Entra words them.

func errUnknownTenant(seg string) *aadError {
	return newErr("invalid_request", 90002, "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", seg)
}

func errMissingParam(name string) *aadError {
	return newErr("invalid_request", 900144, "The request body must contain the following parameter: '%s'.", name)
}

func errMalformed() *aadError {
	return newErr("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
}

func errUnknownClient(clientID string, t *tenant) *aadError {
	dir := "common"
	if t != nil {
		dir = t.name
	}
	return newErr("unauthorized_client", 700016, "Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", clientID, dir)
}

func errNoAccess(t *tenant, c *Client) *aadError {
	return newErr("invalid_grant", 50020, "User account '%s' from identity provider 'https://sts.windows.net/%s/' does not exist in tenant '%s' and cannot access the application '%s'(%s) in that tenant. The account needs to be added as an external user in the tenant first. Sign out and sign in again with a different Azure Active Directory user account.", UserUPN, HomeTenantID, t.name, c.ID, c.displayName())
}

func errRevoked(issued, validFrom time.Time) *aadError {
	return newErr("invalid_grant", 50173, "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '%s' and the TokensValidFrom date (before which tokens are not valid) for this user is '%s'.", issued.UTC().Format(time.RFC3339Nano), validFrom.UTC().Format(time.RFC3339Nano))
}

func errInactive(issued time.Time, inactive time.Duration) *aadError {
	days := int(inactive / (24 * time.Hour))
	rest := inactive - time.Duration(days)*24*time.Hour
	return newErr("invalid_grant", 700082, "The refresh token has expired due to inactivity. The token was issued on %s and was inactive for %d.%02d:%02d:%02d.",
		issued.UTC().Format(time.RFC3339Nano), days, int(rest.Hours()), int(rest.Minutes())%60, int(rest.Seconds())%60)
}

func errMFA(resource string) *aadError {
	e := newErr("invalid_grant", 50076, "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '%s'.", resource)
	e.claims = `{"access_token":{"capolids":{"essential":true,"values":["00000000-0000-4000-8000-00000000cafe"]}}}`
	return e.withSuberror("basic_action")
}

func errConsent(c *Client) *aadError {
	return newErr("invalid_grant", 65001, "The user or administrator has not consented to use the application with ID '%s' named '%s'. Send an interactive authorization request for this user and resource.", c.ID, c.displayName()).withSuberror("consent_required")
}

func errClientMismatch() *aadError {
	return newErr("invalid_grant", 700007, "The refresh token was issued to a different client. A refresh token can only be redeemed by the client it was issued to.")
}
