package harness

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
)

// EchoMode is how an EchoIdP answers the token and device-code endpoints.
type EchoMode int

const (
	// EchoPass forwards every request to the simulator and its answer back.
	EchoPass EchoMode = iota
	// EchoOnError forwards, and puts the request's body into the description of
	// every error the simulator answers, as a careless identity provider or a WAF
	// in front of it does; the error and its codes stay the simulator's.
	EchoOnError
	// EchoJSON answers every token request 400 with an error of an unknown code
	// whose description quotes the body, raw and URL-decoded.
	EchoJSON
	// EchoErrorField answers 400 with the body in the "error" field, no description.
	EchoErrorField
	// EchoHTML answers 403 with an HTML page (a WAF's) quoting the body.
	EchoHTML
	// EchoMalformed answers 200 with a body that is not JSON and quotes the request.
	EchoMalformed
	// EchoDeviceEscapes forwards, and puts terminal escape sequences (screen clear,
	// window title, bell, carriage return, C1 CSI, bidi override) into the
	// device-code answer's message and user code.
	EchoDeviceEscapes
)

// DeviceEscapes is what EchoDeviceEscapes adds to the device-code message.
const DeviceEscapes = "\x1b[2J\x1b]0;pwned-title\x07\rFAKE PROMPT\u009b31m\u202eevil\x1b[0m"

// EchoIdP is a TLS identity provider in front of a simulator: it answers as the
// simulator does (its metadata rewritten to name the EchoIdP), and in the echo modes
// quotes the requests it gets back in its errors. It records every request body, so
// tests can check that a secret was indeed sent (and so indeed echoed).
type EchoIdP struct {
	sim    *entrasim.Sim
	srv    *httptest.Server
	caFile string

	mu     sync.Mutex
	mode   EchoMode
	bodies []string
}

// StartEchoIdP starts an EchoIdP in front of sim. CAFile trusts both it and the
// simulator; point SSL_CERT_FILE at it.
func StartEchoIdP(t testing.TB, sim *entrasim.Sim) *EchoIdP {
	t.Helper()
	e := &EchoIdP{sim: sim}
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(e.serve))
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	simCA, err := os.ReadFile(sim.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	bundle := append(simCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.srv.Certificate().Raw})...)
	e.caFile = filepath.Join(t.TempDir(), "echo-ca.pem")
	if err := os.WriteFile(e.caFile, bundle, 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// URL is the authority host to give the helper.
func (e *EchoIdP) URL() string { return e.srv.URL }

// CAFile is a PEM bundle trusting the EchoIdP and the simulator.
func (e *EchoIdP) CAFile() string { return e.caFile }

// SetMode changes how the next requests are answered.
func (e *EchoIdP) SetMode(m EchoMode) {
	e.mu.Lock()
	e.mode = m
	e.mu.Unlock()
}

// Sent reports whether any request body the EchoIdP got contained s.
func (e *EchoIdP) Sent(s string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, b := range e.bodies {
		if strings.Contains(b, s) {
			return true
		}
	}
	return false
}

// Bodies returns the request bodies the EchoIdP got (token and device-code).
func (e *EchoIdP) Bodies() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.bodies...)
}

// Requests is how many request bodies the EchoIdP got (token and device-code).
func (e *EchoIdP) Requests() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.bodies)
}

func (e *EchoIdP) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	e.mu.Lock()
	mode := e.mode
	isToken := strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token")
	isDevice := strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/devicecode")
	if isToken || isDevice {
		e.bodies = append(e.bodies, string(body))
	}
	e.mu.Unlock()
	decoded, _ := url.QueryUnescape(string(body))
	echo := "request was: " + string(body) + " | decoded: " + decoded
	if isToken {
		switch mode {
		case EchoJSON:
			writeJSON(w, 400, map[string]any{"error": "invalid_request", "error_description": "AADSTS9999999: " + echo + "\r\nTrace ID: x", "error_codes": []int{9999999}})
			return
		case EchoErrorField:
			writeJSON(w, 400, map[string]any{"error": echo})
			return
		case EchoHTML:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(403)
			io.WriteString(w, "<html><body><h1>Request blocked</h1><pre>"+echo+"</pre></body></html>")
			return
		case EchoMalformed:
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"access_token": "`+echo)
			return
		}
	}
	status, hdr, out := e.forward(r, body)
	if mode == EchoOnError && status >= 400 {
		var m map[string]any
		if json.Unmarshal(out, &m) == nil {
			m["error_description"] = echo + " | " + toString(m["error_description"])
			out, _ = json.Marshal(m)
		} else {
			out = append(out, []byte(" "+echo)...)
		}
	}
	if mode == EchoDeviceEscapes && isDevice && status == 200 {
		var m map[string]any
		if json.Unmarshal(out, &m) == nil {
			m["message"] = DeviceEscapes + toString(m["message"])
			m["user_code"] = toString(m["user_code"]) + "\x1b[8m"
			out, _ = json.Marshal(m)
		}
	}
	for _, k := range []string{"Content-Type", "Retry-After", "Location", "Cache-Control"} {
		if v := hdr.Get(k); v != "" {
			w.Header().Set(k, strings.ReplaceAll(v, e.sim.URL(), e.srv.URL))
		}
	}
	w.WriteHeader(status)
	w.Write(out)
}

// forward sends the request to the simulator and returns its answer with the
// simulator's address replaced by the EchoIdP's.
func (e *EchoIdP) forward(r *http.Request, body []byte) (int, http.Header, []byte) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, e.sim.URL()+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return 502, http.Header{}, []byte(err.Error())
	}
	for _, k := range []string{"Content-Type", "Authorization", "Accept"} {
		if v := r.Header.Get(k); v != "" {
			req.Header.Set(k, v)
		}
	}
	client := *e.sim.HTTPClient()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		return 502, http.Header{}, []byte(err.Error())
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, resp.Header, bytes.ReplaceAll(out, []byte(e.sim.URL()), []byte(e.srv.URL))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func toString(v any) string {
	s, _ := v.(string)
	return s
}
