package entra

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"

	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/idphttp"
	"github.com/pctoken/pctoken-helper/redact"
)

// aadsts tells, per Entra error code, what happened and what it means for the caller.
var aadsts = map[int]struct {
	kind failure.Kind
	msg  string
}{
	700082:  {failure.ConsentNeeded, "the refresh token expired after 90 days without use"},
	50173:   {failure.ConsentNeeded, "the refresh token was revoked (password change or an administrator's revocation)"},
	70043:   {failure.ConsentNeeded, "the refresh token expired under a sign-in frequency policy"},
	50076:   {failure.ConsentNeeded, "multi-factor authentication is required"},
	50078:   {failure.ConsentNeeded, "the multi-factor authentication of the sign-in expired"},
	50079:   {failure.ConsentNeeded, "the user must enrol in multi-factor authentication"},
	65001:   {failure.ConsentNeeded, "the app has no consent for the requested scope"},
	70008:   {failure.ConsentNeeded, "the refresh token or authorization code expired"},
	54005:   {failure.ConsentNeeded, "the authorization code was already redeemed"},
	7000215: {failure.Configuration, "the client secret is invalid"},
	7000222: {failure.Configuration, "the client secret has expired"},
	700016:  {failure.Configuration, "the application was not found in the tenant (wrong client id or tenant)"},
	// Consenting again cannot give the user access to another tenant: that is a GDAP
	// relationship (or a guest account) someone has to set up.
	50020:   {failure.Configuration, "the signed-in account has no access in that tenant (no GDAP relationship grants it a role there)"},
	90002:   {failure.Configuration, "the tenant was not found"},
	700007:  {failure.Configuration, "the refresh token was issued to another application (client id mismatch)"},
	700027:  {failure.Configuration, "the client certificate is not registered for the app or its assertion is invalid"},
	7000218: {failure.Configuration, "the app is confidential: it needs a client secret or certificate"},
	700025:  {failure.Configuration, "the app is public: a client secret or certificate must not be sent"},
}

// Classify turns an MSAL or transport error into an *failure.Error. Entra's error JSON is read
// from the response body; the branch is taken on `error` and `error_codes`, never on
// the description text.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	// A failure classified below MSAL (the transport refusing a redirect, a foreign
	// endpoint, an oversized or cut-off answer) is shown without MSAL's wrapping,
	// whose first line ("server response error:") says nothing.
	var done *failure.Error
	if errors.As(err, &done) {
		return done
	}
	// MSAL's decoder error quotes the whole answer; only the fact is kept.
	var badJSON msalerrors.InvalidJsonErr
	if errors.As(err, &badJSON) {
		return &failure.Error{Kind: failure.Transient, Message: "the identity provider sent an answer that is not valid JSON", Err: errors.New("malformed answer from the identity provider")}
	}
	e := classify(err)
	// Every message built here quotes the identity provider, MSAL or the network,
	// and any of them may echo the request: scrub it of secrets and control
	// characters, and bound it.
	e.Message = redact.String(e.Message)
	return e
}

func classify(err error) *failure.Error {
	var call msalerrors.CallErr
	if errors.As(err, &call) && call.Resp != nil {
		return classifyResponse(call.Resp, err)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return &failure.Error{Kind: failure.Transient, Message: "the identity provider did not answer in time", Err: err}
	}
	var unknownCA x509.UnknownAuthorityError
	var verify *tls.CertificateVerificationError
	var hostname x509.HostnameError
	if errors.As(err, &unknownCA) || errors.As(err, &verify) || errors.As(err, &hostname) {
		// MSAL's own text is several lines whose first says nothing; the TLS error says why.
		reason := connReason(err)
		switch {
		case verify != nil:
			reason = verify.Error()
		case unknownCA.Cert != nil:
			reason = unknownCA.Error()
		case hostname.Certificate != nil:
			reason = hostname.Error()
		}
		return &failure.Error{Kind: failure.Configuration, Message: "cannot verify the identity provider's TLS certificate (SSL_CERT_FILE and SSL_CERT_DIR name extra trusted CAs): " + reason, Err: err}
	}
	var netErr net.Error
	if idphttp.IsTransient(err) || errors.As(err, &netErr) || isConnError(err) {
		return &failure.Error{Kind: failure.Transient, Message: "cannot reach the identity provider: " + connReason(err), Err: err}
	}
	if strings.Contains(err.Error(), "declined scopes") {
		return &failure.Error{Kind: failure.ConsentNeeded, Message: "the identity provider did not grant every requested scope", Err: err}
	}
	return &failure.Error{Kind: failure.Unexpected, Message: firstLine(err.Error()), Err: err}
}

type entraError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	SubError         string `json:"suberror"`
}

func classifyResponse(resp *http.Response, err error) *failure.Error {
	var body entraError
	if resp.Body != nil {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_ = json.Unmarshal(b, &body)
	}
	e := &failure.Error{Kind: failure.Unexpected, OAuth: body.Error, Err: err}
	if len(body.ErrorCodes) > 0 {
		e.AADSTS = strconv.Itoa(body.ErrorCodes[0])
		if known, ok := aadsts[body.ErrorCodes[0]]; ok {
			e.Kind, e.Message = known.kind, known.msg
			return e
		}
	}
	e.Message = describe(body, resp.StatusCode)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 || body.Error == "temporarily_unavailable":
		e.Kind = failure.Transient
	case body.Error == "invalid_grant" || body.Error == "interaction_required" || body.Error == "consent_required":
		e.Kind = failure.ConsentNeeded
	case body.Error == "invalid_client" || body.Error == "unauthorized_client":
		e.Kind = failure.Configuration
	}
	return e
}

// AuthorizeError classifies an error the authorize endpoint sent to the redirect URI
// (error, error_description) instead of a code. Such a redirect carries no
// error_codes, so the AADSTS code is read from the description's "AADSTSnnnn: "
// prefix, the only place Entra puts it there. Unknown codes fall back on the OAuth
// error; anything else (access_denied, a declined consent) needs consent again.
func AuthorizeError(oauthErr, description string, err error) *failure.Error {
	e := &failure.Error{Kind: failure.ConsentNeeded, OAuth: oauthErr, Err: err}
	d := firstLine(description)
	if prefix, rest, ok := strings.Cut(d, ": "); ok && strings.HasPrefix(prefix, "AADSTS") {
		if n, convErr := strconv.Atoi(strings.TrimPrefix(prefix, "AADSTS")); convErr == nil && n > 0 {
			e.AADSTS = strconv.Itoa(n)
			if known, ok := aadsts[n]; ok {
				e.Kind, e.Message = known.kind, "sign-in failed: "+known.msg
				return e
			}
			d = rest
		}
	}
	switch oauthErr {
	case "invalid_client", "unauthorized_client":
		e.Kind = failure.Configuration
	case "temporarily_unavailable", "server_error":
		e.Kind = failure.Transient
	}
	if d == "" {
		d = oauthErr
	}
	e.Message = redact.String("sign-in failed: " + d)
	return e
}

// describe is Entra's own description, first line, without the AADSTS prefix (the
// code is shown separately), or the HTTP status when there is no JSON.
func describe(body entraError, status int) string {
	d := firstLine(body.ErrorDescription)
	if _, rest, ok := strings.Cut(d, ": "); ok && strings.HasPrefix(d, "AADSTS") {
		d = rest
	}
	if d == "" && body.Error != "" {
		d = firstLine(body.Error)
	}
	if d == "" {
		d = fmt.Sprintf("the identity provider answered %d %s", status, http.StatusText(status))
	}
	// The text comes from the network and is shown on a terminal: no secret it
	// echoes, no control characters (a carriage return or an escape sequence could
	// rewrite the line), and no more than a line's worth.
	return redact.String(d)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(strings.TrimSuffix(s, "\r"))
}

func isConnError(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	return errors.As(err, &op) || errors.As(err, &dns) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

func connReason(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.Error()
	}
	return firstLine(err.Error())
}
