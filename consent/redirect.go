package consent

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"github.com/pctoken/pctoken-helper/redact"
)

// maxFormBody bounds a form_post body; a real one (code, state, maybe an id_token)
// is a few kilobytes.
const maxFormBody = 1 << 20

// maxErrorText bounds the identity provider's error text we keep for the terminal.
const maxErrorText = 2000

// AuthError is an error the identity provider sent to the redirect URI instead of a
// code, e.g. access_denied when the user declines consent. Both fields are cleaned of
// control characters, so they are safe to print on a terminal.
type AuthError struct{ Code, Description string }

func (e *AuthError) Error() string {
	if e.Description == "" {
		return "identity provider returned " + e.Code
	}
	return "identity provider returned " + e.Code + ": " + e.Description
}

// result is the outcome of the flow: a code, or the identity provider's error.
type result struct {
	code string
	err  error
}

// redirectHandler answers every request to the loopback listener and hands the first
// authorization response carrying the expected state to results.
type redirectHandler struct {
	port    int
	state   string
	results chan result // buffered, capacity 1: the first outcome wins
	flow    *flow
}

func (h *redirectHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setPageHeaders(w.Header())
	if !h.hostAllowed(r.Host) {
		// A foreign Host means a page on another site reached us through DNS
		// rebinding or a proxy; it gets nothing.
		writePage(w, http.StatusBadRequest, pageWrongHost)
		return
	}
	if r.URL.Path == DonePath {
		h.flow.serveDone(w, r)
		return
	}
	if r.URL.Path != "/" && r.URL.Path != "" {
		writePage(w, http.StatusNotFound, pageNotFound)
		return
	}
	params, status, err := responseParams(w, r)
	if err != nil {
		if status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", "GET, POST")
		}
		writePage(w, status, pageMalformed.with(err.Error()))
		return
	}
	res, err := h.evaluate(params)
	if err != nil {
		writePage(w, http.StatusBadRequest, pageRefused.with(err.Error()))
		return
	}
	if h.flow.take(res) {
		h.results <- res // the first response only, so the buffer always has room
	}
	// The first response and any repeat of it (a reload, a second tab) go to the
	// result page; a repeat is never redeemed.
	h.flow.seeDone(w)
}

// hostAllowed accepts the names the redirect URI and the bound addresses give the
// browser, on our port only.
func (h *redirectHandler) hostAllowed(host string) bool {
	port := ":" + strconv.Itoa(h.port)
	return strings.EqualFold(host, "localhost"+port) || host == "127.0.0.1"+port || host == "[::1]"+port
}

// responseParams reads the authorization response from the query (response_mode
// query) or from a form body (response_mode form_post). The status goes with err.
func responseParams(w http.ResponseWriter, r *http.Request) (url.Values, int, error) {
	switch r.Method {
	case http.MethodGet:
		v, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("malformed query: %w", err)
		}
		return v, 0, nil
	case http.MethodPost:
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/x-www-form-urlencoded" {
			return nil, http.StatusUnsupportedMediaType, errors.New("a form post must be application/x-www-form-urlencoded")
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBody))
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("read form body: %w", err)
		}
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("malformed form body: %w", err)
		}
		return v, 0, nil
	default:
		return nil, http.StatusMethodNotAllowed, fmt.Errorf("method %s is not used for sign-in responses", r.Method)
	}
}

// evaluate turns response parameters into an outcome, or an error when they are not
// the response this flow waits for. An error from the identity provider counts only
// with the right state, or anyone could end the flow by sending one.
func (h *redirectHandler) evaluate(v url.Values) (result, error) {
	for _, k := range []string{"state", "code", "error", "error_description"} {
		if len(v[k]) > 1 {
			// RFC 6749 section 3.1: parameters must not repeat.
			return result{}, fmt.Errorf("repeated parameter %s", k)
		}
	}
	if subtle.ConstantTimeCompare([]byte(v.Get("state")), []byte(h.state)) != 1 {
		return result{}, errors.New("state does not match")
	}
	if code := v.Get("error"); code != "" {
		return result{err: &AuthError{
			Code:        printable(code),
			Description: printable(v.Get("error_description")),
		}}, nil
	}
	if code := v.Get("code"); code != "" {
		redact.Register(code) // an error text quoting the redemption must not show it
		return result{code: code}, nil
	}
	return result{}, errors.New("neither code nor error")
}

// printable drops control and formatting characters (escape sequences, bidi
// overrides) from text an outside party wrote, keeping line breaks, and bounds it.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || unicode.IsPrint(r) {
			return r
		}
		if r == '\t' {
			return ' '
		}
		return -1
	}, s)
	if len(s) > maxErrorText {
		s = strings.ToValidUTF8(s[:maxErrorText], "") + "..."
	}
	return strings.TrimSpace(s)
}
