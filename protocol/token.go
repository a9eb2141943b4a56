// Package protocol encodes and decodes the helper's wire formats: the shapes of
// `get --output`, the `--request` lines, kubectl's ExecCredential and git's
// credential protocol.
//
// It is pure: it does no I/O beyond the readers and writers handed in, and it
// never reads the clock (times are passed in). Each answer is written with a
// single Write call, so a caller that serialises its Writes never interleaves
// two answers.
package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Token is what every output shape is rendered from.
type Token struct {
	AccessToken string
	ExpiresOn   time.Time
	TenantID    string
	Scopes      []string
	Profile     string
	Cached      bool
}

// Error is the contract's error object. Remedy is the command to run, when
// there is one.
type Error struct {
	Code    string `json:"code"`
	AADSTS  string `json:"aadsts,omitempty"`
	Message string `json:"message"`
	Remedy  string `json:"remedy,omitempty"`
}

// tokenJSON is the `json` shape; the field order is the contract's.
type tokenJSON struct {
	AccessToken string   `json:"access_token"`
	TokenType   string   `json:"token_type"`
	ExpiresOn   int64    `json:"expires_on"`
	ExpiresAt   string   `json:"expires_at"`
	TenantID    string   `json:"tenant_id"`
	Scopes      []string `json:"scopes"`
	Profile     string   `json:"profile"`
	Cached      bool     `json:"cached"`
}

// azJSON mirrors `az account get-access-token -o json` in az's own field
// order; subscription is left out because the helper has none.
type azJSON struct {
	AccessToken string `json:"accessToken"`
	ExpiresOn   string `json:"expiresOn"`
	ExpiresOnTS int64  `json:"expires_on"`
	Tenant      string `json:"tenant"`
	TokenType   string `json:"tokenType"`
}

// azdJSON mirrors `azd auth token --output json`.
type azdJSON struct {
	Token     string `json:"token"`
	ExpiresOn string `json:"expiresOn"`
}

type errorJSON struct {
	Error Error `json:"error"`
}

const (
	// azLayout is how az prints expiresOn (Python's "%Y-%m-%d %H:%M:%S.%f").
	azLayout = "2006-01-02 15:04:05.000000"
	// azdLayout is the only layout azidentity accepts from azd: UTC, no fraction.
	azdLayout = "2006-01-02T15:04:05Z"
	// rfc3339UTC is used wherever the contract says RFC 3339 UTC; whole
	// seconds keep it in step with the unix-seconds fields beside it.
	rfc3339UTC = "2006-01-02T15:04:05Z"
)

var (
	errEmptyToken = errors.New("access token is empty")
	errNoExpiry   = errors.New("token has no expiry time")
)

// Outputs are the shapes get --output writes.
var Outputs = []string{"json", "token", "az", "azd"}

// WriteOutput writes t in the shape output names (one of Outputs; "" is json). Times
// in the az shape are local, as az writes them.
func WriteOutput(w io.Writer, output string, t Token) error {
	switch output {
	case "token":
		return WriteToken(w, t)
	case "az":
		return WriteAz(w, t, time.Local)
	case "azd":
		return WriteAzd(w, t)
	}
	return WriteJSON(w, t)
}

// WriteJSON writes the `json` shape followed by a newline.
func WriteJSON(w io.Writer, t Token) error {
	v, err := newTokenJSON(t)
	if err != nil {
		return err
	}
	return writeJSONLine(w, v)
}

// WriteToken writes the bare token and a newline, for `$(...)` in scripts.
func WriteToken(w io.Writer, t Token) error {
	if err := checkToken(t.AccessToken); err != nil {
		return err
	}
	_, err := io.WriteString(w, t.AccessToken+"\n")
	return err
}

// WriteAz writes the shape of `az account get-access-token -o json`, with
// expiresOn shown in loc as az does (nil means time.Local). It is indented
// like az's output so that scripts grepping one field per line keep working.
func WriteAz(w io.Writer, t Token, loc *time.Location) error {
	if err := checkTokenAndExpiry(t); err != nil {
		return err
	}
	if loc == nil {
		loc = time.Local
	}
	exp := t.ExpiresOn.Truncate(time.Second)
	return writeIndented(w, azJSON{
		AccessToken: t.AccessToken,
		ExpiresOn:   exp.In(loc).Format(azLayout),
		ExpiresOnTS: exp.Unix(),
		Tenant:      t.TenantID,
		TokenType:   "Bearer",
	})
}

// WriteAzd writes the shape of `azd auth token --output json`, indented like
// azd's output.
func WriteAzd(w io.Writer, t Token) error {
	if err := checkTokenAndExpiry(t); err != nil {
		return err
	}
	return writeIndented(w, azdJSON{
		Token:     t.AccessToken,
		ExpiresOn: t.ExpiresOn.UTC().Format(azdLayout),
	})
}

// WriteError writes {"error":{...}} followed by a newline.
func WriteError(w io.Writer, e Error) error {
	return writeJSONLine(w, errorJSON{Error: e})
}

func newTokenJSON(t Token) (tokenJSON, error) {
	if err := checkTokenAndExpiry(t); err != nil {
		return tokenJSON{}, err
	}
	scopes := t.Scopes
	if scopes == nil {
		// A script iterating over .scopes should see a list, never null.
		scopes = []string{}
	}
	exp := t.ExpiresOn.Truncate(time.Second).UTC()
	return tokenJSON{
		AccessToken: t.AccessToken,
		TokenType:   "Bearer",
		ExpiresOn:   exp.Unix(),
		ExpiresAt:   exp.Format(rfc3339UTC),
		TenantID:    t.TenantID,
		Scopes:      scopes,
		Profile:     t.Profile,
		Cached:      t.Cached,
	}, nil
}

func checkTokenAndExpiry(t Token) error {
	if err := checkToken(t.AccessToken); err != nil {
		return err
	}
	if t.ExpiresOn.IsZero() {
		return errNoExpiry
	}
	return nil
}

// checkToken refuses tokens that could not travel in an Authorization header
// or would break a line-oriented answer.
func checkToken(tok string) error {
	if tok == "" {
		return errEmptyToken
	}
	if i := strings.IndexFunc(tok, isSpaceOrControl); i >= 0 {
		return fmt.Errorf("access token contains a space or control character at byte %d", i)
	}
	return nil
}

func isSpaceOrControl(r rune) bool {
	return r <= ' ' || r == 0x7f
}

// writeJSONLine encodes v as one compact line. HTML escaping is off so that
// messages read as written and echoed ids stay byte for byte.
func writeJSONLine(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

func writeIndented(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}
