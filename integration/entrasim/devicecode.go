package entrasim

import (
	"crypto/rand"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
)

// deviceCode is an issued device code, waiting for the user.
type deviceCode struct {
	clientID string
	userCode string
	scopes   string
	tenantID string // resolved; looked up again at redemption
	expires  time.Time
	polls    int
	approved bool
}

// DeviceCodeRecord describes the last device code issued.
type DeviceCodeRecord struct {
	UserCode string
	ClientID string
	Scopes   []string
	Message  string
}

// LastDeviceCode returns the last device code issued.
func (s *Sim) LastDeviceCode() (DeviceCodeRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastDevice == nil {
		return DeviceCodeRecord{}, false
	}
	rec := *s.lastDevice
	rec.Scopes = append([]string(nil), rec.Scopes...)
	return rec, true
}

// ApproveDeviceCode lets the user sign in with userCode, as on the verification page.
func (s *Sim) ApproveDeviceCode(userCode string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := normalizeUserCode(userCode)
	for _, dc := range s.devices {
		if dc.userCode == want && s.now().Before(dc.expires) {
			dc.approved = true
			return nil
		}
	}
	return fmt.Errorf("approve device code: unknown or expired user code %q", userCode)
}

func normalizeUserCode(c string) string {
	return strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(strings.TrimSpace(c)))
}

// userCodeAlphabet avoids characters a user would confuse (0/O, 1/I).
const userCodeAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

func newUserCode() string {
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = userCodeAlphabet[int(b[i])%len(userCodeAlphabet)]
	}
	return string(b)
}

type deviceCodeResponse struct {
	UserCode        string `json:"user_code"`
	DeviceCode      string `json:"device_code"`
	VerificationURI string `json:"verification_uri"`
	ExpiresIn       int    `json:"expires_in"`
	Interval        int    `json:"interval"`
	Message         string `json:"message"`
}

func (s *Sim) serveDeviceCode(w http.ResponseWriter, r *http.Request, rc *reqCtx, seg string) {
	form, e := parseTokenForm(w, r)
	if e != nil {
		s.writeError(w, rc, e)
		return
	}
	clientID, scope := form.Get("client_id"), form.Get("scope")
	rc.note("client=" + clientID)
	s.mu.Lock()
	ref := s.resolveTenant(seg)
	c := s.clients[strings.ToLower(clientID)]
	s.mu.Unlock()
	switch {
	case clientID == "":
		e = errMissingParam("client_id")
	case !ref.known():
		e = errUnknownTenant(seg)
	case c == nil:
		e = errUnknownClient(clientID, ref.t)
	case scope == "":
		e = errMissingParam("scope")
	}
	if e != nil {
		s.writeError(w, rc, e)
		return
	}

	verify := s.url + "/devicelogin"
	resp := deviceCodeResponse{
		UserCode:        newUserCode(),
		DeviceCode:      randomToken("DAQABAAEAAAD", 96),
		VerificationURI: verify,
		ExpiresIn:       int(deviceCodeLifetime / time.Second),
		Interval:        deviceCodeInterval,
	}
	resp.Message = "To sign in, use a web browser to open the page " + verify + " and enter the code " + resp.UserCode + " to authenticate."
	s.mu.Lock()
	s.devices[resp.DeviceCode] = &deviceCode{
		clientID: c.ID,
		userCode: resp.UserCode,
		scopes:   scope,
		tenantID: s.forUser(ref).id,
		expires:  s.now().Add(deviceCodeLifetime),
	}
	s.lastDevice = &DeviceCodeRecord{UserCode: resp.UserCode, ClientID: c.ID, Scopes: strings.Fields(scope), Message: resp.Message}
	s.mu.Unlock()
	rc.note("user_code=" + resp.UserCode)
	writeJSON(w, http.StatusOK, resp)
}

var deviceLoginPage = template.Must(template.New("devicelogin").Parse(`<!DOCTYPE html><html><head><title>Enter code</title></head><body>{{if .Done}}<p id="result">You have signed in to the {{.App}} application on your device. You may now close this window.</p>{{else}}<form method="POST" action="/devicelogin"><p>{{.Problem}}</p><label>Enter code <input name="otc" /></label><input type="submit" value="Next" /></form>{{end}}</body></html>`))

// serveDeviceLogin is the verification page: a form, and its POST approves the code as
// the simulated user.
func (s *Sim) serveDeviceLogin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	data := struct {
		Done         bool
		App, Problem string
	}{}
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		code := ""
		if err := r.ParseForm(); err == nil {
			code = r.PostForm.Get("otc")
		}
		if err := s.ApproveDeviceCode(code); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			data.Problem = "That code didn't work. Check the code and try again."
		} else {
			data.Done, data.App = true, s.deviceApp(code)
		}
	}
	_ = deviceLoginPage.Execute(w, data)
}

func (s *Sim) deviceApp(userCode string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := normalizeUserCode(userCode)
	for _, dc := range s.devices {
		if dc.userCode == want {
			if c := s.clients[strings.ToLower(dc.clientID)]; c != nil {
				return c.displayName()
			}
		}
	}
	return "requesting"
}
