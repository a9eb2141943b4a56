package keyvault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/pctoken/pctoken-helper/failure"
)

// Roles a caller needs, as Azure names the built-in roles.
const (
	RoleRead  = "Key Vault Secrets User"
	RoleWrite = "Key Vault Secrets Officer"
)

// maxShown bounds text from the vault shown to a person.
const maxShown = 400

// vaultError is Key Vault's error body.
type vaultError struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		InnerError *struct {
			Code string `json:"code"`
		} `json:"innererror"`
	} `json:"error"`
}

// op is what the store was doing, for messages and the role a 403 asks for.
type op struct {
	verb  string // "read", "write", "delete", ...
	write bool
}

var (
	opRead   = op{verb: "read", write: false}
	opWrite  = op{verb: "write", write: true}
	opDelete = op{verb: "delete", write: true}
	opList   = op{verb: "list the versions of", write: false}
	opUpdate = op{verb: "update", write: true}
)

// classify turns an error of azsecrets or azidentity into the program's failure, with
// the remedy a person can act on. Text from the vault is bounded and cleaned.
func (s *Store) classify(o op, err error) error {
	if err == nil {
		return nil
	}
	id := s.opts.Secret
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		body := parseVaultError(re)
		code, msg := body.Error.Code, clean(body.Error.Message)
		if code == "" {
			code = re.ErrorCode
		}
		detail := ""
		if msg != "" {
			detail = ": " + msg
		}
		switch status := re.StatusCode; {
		case status == http.StatusForbidden && body.Error.InnerError != nil && body.Error.InnerError.Code == "SecretDisabled":
			return &failure.Error{Kind: failure.Configuration,
				Message: fmt.Sprintf("failed to %s secret %s: its latest version is disabled", o.verb, id),
				Remedy:  fmt.Sprintf("enable it, or write a new version: pctoken-helper import --store azure-keyvault --keyvault-secret %s (a token on stdin)", id),
				Err:     err}
		case status == http.StatusForbidden:
			role := RoleRead
			if o.write {
				role = RoleWrite
			}
			assignee := callerOID(body.Error.Message)
			if assignee == "" {
				assignee = "<the caller's object id>"
			}
			return &failure.Error{Kind: failure.Configuration,
				Message: fmt.Sprintf("failed to %s secret %s: the vault refused the identity of --keyvault-auth %s (403 %s)%s", o.verb, id, s.authName(), code, detail),
				Remedy:  fmt.Sprintf("grant that identity the %q role on the secret: az role assignment create --role %q --assignee %s --scope \"$(az keyvault show --name %s --query id -o tsv)/secrets/%s\"", role, role, assignee, id.VaultName(), id.Name),
				Err:     err}
		case status == http.StatusNotFound:
			return &failure.Error{Kind: failure.Configuration,
				Message: fmt.Sprintf("failed to %s secret %s: it does not exist (404 %s)", o.verb, id, code),
				Remedy:  fmt.Sprintf("put a refresh token there: pctoken-helper consent --store azure-keyvault --keyvault-secret %s, or pipe one into pctoken-helper import --store azure-keyvault --keyvault-secret %s", id, id),
				Err:     err}
		case status == http.StatusConflict:
			return s.deletedError(o, err)
		case status == http.StatusUnauthorized:
			return &failure.Error{Kind: failure.Configuration,
				Message: fmt.Sprintf("failed to %s secret %s: the vault refused the access token of --keyvault-auth %s (401 %s)%s", o.verb, id, s.authName(), code, detail),
				Remedy:  "check that --keyvault-auth names an identity of the vault's tenant: pctoken-helper -v get shows the vault's challenge",
				Err:     err}
		case status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500:
			return &failure.Error{Kind: failure.Transient,
				Message: fmt.Sprintf("failed to %s secret %s: the vault answered %d %s after retries%s", o.verb, id, status, code, detail),
				Err:     err}
		default:
			return &failure.Error{Kind: failure.Configuration,
				Message: fmt.Sprintf("failed to %s secret %s: the vault answered %d %s%s", o.verb, id, status, code, detail),
				Err:     err}
		}
	}
	var authFailed *azidentity.AuthenticationFailedError
	var credErr *credentialError
	switch {
	case errors.As(err, &authFailed):
		if authFailed.RawResponse != nil && (authFailed.RawResponse.StatusCode == 429 || authFailed.RawResponse.StatusCode >= 500) {
			return &failure.Error{Kind: failure.Transient, Message: fmt.Sprintf("failed to get an access token for the vault with --keyvault-auth %s: %s", s.authName(), clean(authFailed.Error())), Err: err}
		}
		return &failure.Error{Kind: failure.Configuration,
			Message: fmt.Sprintf("failed to get an access token for the vault with --keyvault-auth %s: %s", s.authName(), clean(firstLine(authFailed.Error()))),
			Remedy:  "check the identity --keyvault-auth uses (docs/keyvault.md lists what each method reads)",
			Err:     err}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &failure.Error{Kind: failure.Transient, Message: fmt.Sprintf("failed to %s secret %s: no answer in time", o.verb, id), Err: err}
	case isNetError(err):
		return &failure.Error{Kind: failure.Transient, Message: fmt.Sprintf("failed to %s secret %s: %s", o.verb, id, clean(err.Error())), Err: err}
	case errors.As(err, &credErr):
		// azidentity's credentialUnavailableError (unexported) and the chain's
		// aggregate of them: nothing this machine offers as --keyvault-auth works.
		return &failure.Error{Kind: failure.Configuration,
			Message: fmt.Sprintf("failed to authenticate to the vault with --keyvault-auth %s: %s", s.authName(), clean(firstLine(err.Error()))),
			Remedy:  "pick the identity this machine has: --keyvault-auth managed-identity, workload-identity, environment or azure-cli (docs/keyvault.md)",
			Err:     err}
	}
	return &failure.Error{Kind: failure.Configuration, Message: fmt.Sprintf("failed to %s secret %s: %s", o.verb, id, clean(err.Error())), Err: err}
}

// callerOID is the object id Key Vault names in a 403 ("Caller: appid=...;oid=<id>;..."),
// if it is a GUID; "" otherwise.
func callerOID(msg string) string {
	_, rest, ok := strings.Cut(msg, "oid=")
	if !ok {
		return ""
	}
	oid, _, _ := strings.Cut(rest, ";")
	if len(oid) != 36 || strings.Trim(strings.ToLower(oid), "0123456789abcdef-") != "" {
		return ""
	}
	return oid
}

func (s *Store) deletedError(o op, err error) error {
	id := s.opts.Secret
	return &failure.Error{Kind: failure.Configuration,
		Message: fmt.Sprintf("failed to %s secret %s: it was deleted and is kept recoverable (soft delete), so its name cannot be used until it is recovered or purged", o.verb, id),
		Remedy:  fmt.Sprintf("az keyvault secret recover --vault-name %s --name %s", id.VaultName(), id.Name),
		Err:     err}
}

func parseVaultError(re *azcore.ResponseError) vaultError {
	var v vaultError
	if re.RawResponse == nil || re.RawResponse.Body == nil {
		return v
	}
	// azcore has read the body into memory already; bound what is parsed anyway.
	var buf [64 << 10]byte
	n, _ := readFull(re.RawResponse.Body, buf[:])
	_ = json.Unmarshal(buf[:n], &v)
	v.Error.Code = clean(v.Error.Code)
	if len(v.Error.Code) > 64 {
		v.Error.Code = v.Error.Code[:64]
	}
	return v
}

func readFull(r interface{ Read([]byte) (int, error) }, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "---") {
			return l
		}
	}
	return s
}

// clean makes outside text safe to show: valid UTF-8, control characters (line breaks
// included) turned into single spaces, at most maxShown bytes.
func clean(s string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.ToValidUTF8(s, "?") {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r) {
			if !space {
				b.WriteByte(' ')
				space = true
			}
			continue
		}
		space = r == ' '
		if b.Len()+utf8.RuneLen(r) > maxShown {
			b.WriteString("...")
			break
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

// credentialError marks a failure of the credential that reaches the vault, so that
// classify tells it from the vault's own answers without reading its text.
type credentialError struct{ err error }

func (e *credentialError) Error() string { return e.err.Error() }
func (e *credentialError) Unwrap() error { return e.err }
