// Package kvsim simulates Azure Key Vault's secrets REST API, faithfully enough that
// the real azsecrets client (and the pctoken-helper binary built on it) runs against it
// unchanged, with every check of the client on.
//
// It serves TLS on 127.0.0.1 with a certificate for *.vault.azure.net (and the US Gov
// and China vault domains) from its own CA (CAFile, for SSL_CERT_FILE). azsecrets
// refuses a vault whose host does not end in the challenge resource's domain, so a
// client reaches the simulator as https://<vault>.vault.azure.net through a CONNECT
// proxy (integration/tlsproxy) named in HTTPS_PROXY; the vault name comes from the
// Host header, so one simulator serves any number of vaults.
//
// What it does, as Key Vault does it:
//   - challenge-based authentication: a request without a bearer token gets 401 with
//     WWW-Authenticate: Bearer authorization="<entrasim>/<tenant>", resource="https://vault.azure.net";
//     a token must be one the Entra simulator issued, for that resource, in that tenant;
//   - RBAC per principal (app id or object id): none, read (Key Vault Secrets User) or
//     write (Key Vault Secrets Officer), with Key Vault's 403 body naming caller and action;
//   - secrets with versions (PUT creates one), tags, content type, enabled; GET of the
//     latest or one version; the versions list, paged; PATCH of tags and enabled;
//     DELETE is a soft delete (PUT of the name then answers 409 until recovered);
//     GET /deletedsecrets/{name}, POST /deletedsecrets/{name}/recover;
//   - throttling: per vault per 10 s, 300 creates and 4,000 other transactions (both
//     settable), 429 with Retry-After; throttled calls do not count;
//   - fault injection: FailNext (5xx), ThrottleNext, HangNext, SetLatency;
//   - counters by operation (Stats), and a clock (Options.Now) that dates versions and
//     the Date header.
package kvsim

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
)

// Resource is the audience of Key Vault access tokens in the public cloud.
const Resource = "https://vault.azure.net"

// Role is what a principal may do with secrets.
type Role int

const (
	None  Role = iota
	Read       // Key Vault Secrets User: get secrets, list versions
	Write      // Key Vault Secrets Officer: everything on secrets
)

// Options configure a simulator.
type Options struct {
	// Entra issues the tokens the vault accepts; required.
	Entra *entrasim.Sim
	// Tenant is the vault's tenant, entrasim.HomeTenantID if empty.
	Tenant string
	// Dir receives ca.pem; a temporary folder removed by Close if empty.
	Dir string
	// Now is the vault's clock, time.Now if nil.
	Now func() time.Time
	// Logf, if set, receives one line per request (never a secret value).
	Logf func(format string, args ...any)
}

// Version is one version of a secret, as tests inspect it.
type Version struct {
	ID          string
	Value       string
	ContentType string
	Tags        map[string]string
	Enabled     bool
	Created     time.Time
	Updated     time.Time
}

type secret struct {
	versions []*Version // oldest first
	deleted  *time.Time
}

// Sim is a running simulator. Its methods are safe for concurrent use.
type Sim struct {
	opts   Options
	now    func() time.Time
	caFile string
	tmp    string
	ln     net.Listener
	srv    *http.Server
	done   chan struct{}
	once   sync.Once

	mu       sync.Mutex
	secrets  map[string]*secret // vault + "/" + lower(name)
	roles    map[string]Role    // lower(app id or object id)
	stats    map[string]int
	fail     []int // statuses of the next failures
	throttle []time.Duration
	hang     int
	latency  time.Duration
	limits   limits
	window   map[string]*windowCount // per vault
}

type limits struct {
	creates, others int
	window          time.Duration
}

type windowCount struct {
	start           time.Time
	creates, others int
}

// Start starts serving on 127.0.0.1.
func Start(opts Options) (*Sim, error) {
	if opts.Entra == nil {
		return nil, fmt.Errorf("kvsim: Options.Entra is required")
	}
	if opts.Tenant == "" {
		opts.Tenant = entrasim.HomeTenantID
	}
	s := &Sim{opts: opts, now: opts.Now, done: make(chan struct{}),
		secrets: map[string]*secret{}, roles: map[string]Role{}, stats: map[string]int{},
		limits: limits{creates: 300, others: 4000, window: 10 * time.Second}, window: map[string]*windowCount{}}
	if s.now == nil {
		s.now = time.Now
	}
	caPEM, cert, err := newPKI()
	if err != nil {
		return nil, err
	}
	dir := opts.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "kvsim-"); err != nil {
			return nil, err
		}
		s.tmp = dir
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s.caFile = filepath.Join(dir, "kvsim-ca.pem")
	if err := os.WriteFile(s.caFile, caPEM, 0o600); err != nil {
		return nil, err
	}
	if s.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}},
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go func() { _ = s.srv.Serve(tls.NewListener(s.ln, s.srv.TLSConfig)) }()
	return s, nil
}

// Close stops serving and releases hung requests.
func (s *Sim) Close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		err = s.srv.Close()
		if s.tmp != "" {
			os.RemoveAll(s.tmp)
		}
	})
	return err
}

// Addr is the loopback address to route *.vault.azure.net:443 to.
func (s *Sim) Addr() string { return s.ln.Addr().String() }

// CAFile is the PEM of the simulator's CA.
func (s *Sim) CAFile() string { return s.caFile }

// VaultURL is the URL of the vault called name in the public cloud.
func VaultURL(name string) string { return "https://" + name + ".vault.azure.net" }

// SecretURL is the secret identifier of a secret in the vault called vault.
func SecretURL(vault, name string) string { return VaultURL(vault) + "/secrets/" + name }

// Grant gives principal (an app id or object id) role on every vault.
func (s *Sim) Grant(principal string, r Role) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roles[strings.ToLower(principal)] = r
}

// FailNext makes the next n authenticated requests fail with status (5xx).
func (s *Sim) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.fail = append(s.fail, status)
	}
}

// ThrottleNext makes the next n authenticated requests answer 429 with retryAfter.
func (s *Sim) ThrottleNext(n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.throttle = append(s.throttle, retryAfter)
	}
}

// HangNext makes the next n authenticated requests never answer (until the client
// gives up or the simulator closes).
func (s *Sim) HangNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hang += n
}

// ResetFaults drops injected failures, throttles and hangs not used up.
func (s *Sim) ResetFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail, s.throttle, s.hang = nil, nil, 0
}

// SetLatency delays every request.
func (s *Sim) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// SetLimits sets the throttling limits per vault: creates and other transactions per
// window; a new window starts now.
func (s *Sim) SetLimits(creates, others int, window time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits = limits{creates: creates, others: others, window: window}
	s.window = map[string]*windowCount{}
}

// Stats counts requests by operation: challenge (401 to a request without a token),
// get, set, versions, update, delete, getdeleted, recover, and by outcome: throttled,
// failed, forbidden, unauthorized.
func (s *Sim) Stats() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.stats))
	for k, v := range s.stats {
		out[k] = v
	}
	return out
}

// ResetStats zeroes the counters.
func (s *Sim) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = map[string]int{}
}

func key(vault, name string) string { return strings.ToLower(vault) + "/" + strings.ToLower(name) }

// Put writes a version as another tool would (no helper tags), and returns its id.
func (s *Sim) Put(vault, name, value string, tags map[string]string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.put(vault, name, value, "", tags).ID
}

func (s *Sim) put(vault, name, value, contentType string, tags map[string]string) *Version {
	sec := s.secrets[key(vault, name)]
	if sec == nil {
		sec = &secret{}
		s.secrets[key(vault, name)] = sec
	}
	now := s.now().UTC().Truncate(time.Second)
	v := &Version{ID: newID(), Value: value, ContentType: contentType, Tags: tags, Enabled: true, Created: now, Updated: now}
	sec.versions = append(sec.versions, v)
	return v
}

// Latest is the newest version of a secret (deleted or not).
func (s *Sim) Latest(vault, name string) (Version, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[key(vault, name)]
	if sec == nil || len(sec.versions) == 0 {
		return Version{}, false
	}
	return copyVersion(sec.versions[len(sec.versions)-1]), true
}

// Versions lists a secret's versions, oldest first.
func (s *Sim) Versions(vault, name string) []Version {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Version
	if sec := s.secrets[key(vault, name)]; sec != nil {
		for _, v := range sec.versions {
			out = append(out, copyVersion(v))
		}
	}
	return out
}

// Delete soft-deletes a secret, as the portal or az would.
func (s *Sim) Delete(vault, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[key(vault, name)]
	if sec == nil || sec.deleted != nil {
		return false
	}
	t := s.now()
	sec.deleted = &t
	return true
}

func copyVersion(v *Version) Version {
	c := *v
	c.Tags = map[string]string{}
	for k, t := range v.Tags {
		c.Tags[k] = t
	}
	return c
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ---- HTTP ----

type errBody struct {
	Error errDetail `json:"error"`
}

type errDetail struct {
	Code       string     `json:"code"`
	Message    string     `json:"message"`
	InnerError *innerCode `json:"innererror,omitempty"`
}

type innerCode struct {
	Code string `json:"code"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, msg, inner string) {
	d := errDetail{Code: code, Message: msg}
	if inner != "" {
		d.InnerError = &innerCode{Code: inner}
	}
	writeJSON(w, status, errBody{d})
}

// principal is the caller a valid token names.
type principal struct {
	appID, oid, tid string
}

func (s *Sim) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

func (s *Sim) count(k string) {
	s.mu.Lock()
	s.stats[k]++
	s.mu.Unlock()
}

// ServeHTTP is the vault's REST API.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Date", s.now().UTC().Format(http.TimeFormat))
	w.Header().Set("x-ms-keyvault-service-version", "1.9.0.0")
	vault, _, _ := strings.Cut(strings.ToLower(r.Host), ".")
	s.mu.Lock()
	latency := s.latency
	s.mu.Unlock()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		}
	}
	if r.URL.Query().Get("api-version") == "" {
		writeErr(w, http.StatusBadRequest, "BadParameter", "The request URI contains an invalid or missing api-version.", "")
		return
	}
	p, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	if !s.inject(w, r, vault) {
		return
	}
	s.route(w, r, vault, p)
}

func (s *Sim) challenge(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization="%s/%s", resource="%s"`, s.opts.Entra.URL(), s.opts.Tenant, Resource))
}

func (s *Sim) authenticate(w http.ResponseWriter, r *http.Request) (principal, bool) {
	h := r.Header.Get("Authorization")
	tok, found := strings.CutPrefix(h, "Bearer ")
	if !found || tok == "" {
		s.count("challenge")
		s.challenge(w)
		writeErr(w, http.StatusUnauthorized, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.", "")
		return principal{}, false
	}
	c, err := s.opts.Entra.ValidateAccessToken(tok)
	msg := ""
	switch {
	case err != nil:
		msg = "AKV10022: Invalid audience or token."
	case strings.TrimRight(c.Audience, "/") != Resource:
		msg = fmt.Sprintf("AKV10022: Invalid audience. Expected %s, found: %s.", Resource, c.Audience)
	case !strings.EqualFold(c.TenantID, s.opts.Tenant):
		msg = fmt.Sprintf("AKV10032: Invalid issuer. Expected one of https://sts.windows.net/%s/, found https://sts.windows.net/%s/.", s.opts.Tenant, c.TenantID)
	}
	if msg != "" {
		s.count("unauthorized")
		s.challenge(w)
		writeErr(w, http.StatusUnauthorized, "Unauthorized", msg, "")
		return principal{}, false
	}
	return principal{appID: c.AppID, oid: c.ObjectID, tid: c.TenantID}, true
}

// inject applies throttling and the injected faults; false when it answered.
func (s *Sim) inject(w http.ResponseWriter, r *http.Request, vault string) bool {
	create := r.Method == http.MethodPut
	s.mu.Lock()
	if len(s.throttle) > 0 {
		ra := s.throttle[0]
		s.throttle = s.throttle[1:]
		s.stats["throttled"]++
		s.mu.Unlock()
		s.tooMany(w, ra)
		return false
	}
	now := s.now()
	wc := s.window[vault]
	if wc == nil || now.Sub(wc.start) >= s.limits.window || now.Before(wc.start) {
		wc = &windowCount{start: now}
		s.window[vault] = wc
	}
	over := create && wc.creates >= s.limits.creates || !create && wc.others >= s.limits.others
	if over {
		ra := wc.start.Add(s.limits.window).Sub(now)
		s.stats["throttled"]++
		s.mu.Unlock()
		s.tooMany(w, ra)
		return false
	}
	if create {
		wc.creates++
	} else {
		wc.others++
	}
	if len(s.fail) > 0 {
		status := s.fail[0]
		s.fail = s.fail[1:]
		s.stats["failed"]++
		s.mu.Unlock()
		writeErr(w, status, "InternalServerError", "The service encountered an internal error. Please try again later.", "")
		return false
	}
	if s.hang > 0 {
		s.hang--
		s.stats["hung"]++
		s.mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return false
	}
	s.mu.Unlock()
	return true
}

func (s *Sim) tooMany(w http.ResponseWriter, retryAfter time.Duration) {
	secs := int((retryAfter + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeErr(w, http.StatusTooManyRequests, "Throttled", "Operations per second is over the limit for this vault. For more information, see https://aka.ms/kv-service-limits.", "")
}

func (s *Sim) route(w http.ResponseWriter, r *http.Request, vault string, p principal) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) >= 2 && parts[0] == "secrets":
		name := parts[1]
		rest := parts[2:]
		switch {
		case r.Method == http.MethodPut && len(rest) == 0:
			s.op(w, r, vault, name, p, "set", "setSecret/action", Write, s.serveSet)
		case r.Method == http.MethodGet && len(rest) == 1 && rest[0] == "versions":
			s.op(w, r, vault, name, p, "versions", "readMetadata/action", Read, s.serveVersions)
		case r.Method == http.MethodGet && len(rest) <= 1:
			s.op(w, r, vault, name, p, "get", "getSecret/action", Read, s.serveGet)
		case r.Method == http.MethodPatch && len(rest) == 1:
			s.op(w, r, vault, name, p, "update", "writeMetadata/action", Write, s.serveUpdate)
		case r.Method == http.MethodDelete && len(rest) == 0:
			s.op(w, r, vault, name, p, "delete", "delete", Write, s.serveDelete)
		default:
			writeErr(w, http.StatusBadRequest, "BadParameter", "Method or path not supported by kvsim.", "")
		}
	case len(parts) >= 2 && parts[0] == "deletedsecrets":
		name := parts[1]
		switch {
		case r.Method == http.MethodGet && len(parts) == 2:
			s.op(w, r, vault, name, p, "getdeleted", "../deletedSecrets/read", Write, s.serveGetDeleted)
		case r.Method == http.MethodPost && len(parts) == 3 && parts[2] == "recover":
			s.op(w, r, vault, name, p, "recover", "recover/action", Write, s.serveRecover)
		default:
			writeErr(w, http.StatusBadRequest, "BadParameter", "Method or path not supported by kvsim.", "")
		}
	default:
		writeErr(w, http.StatusNotFound, "NotFound", "The requested resource was not found.", "")
	}
}

type handler func(w http.ResponseWriter, r *http.Request, vault, name string, rest []string)

func (s *Sim) op(w http.ResponseWriter, r *http.Request, vault, name string, p principal, opName, action string, need Role, h handler) {
	s.count(opName)
	s.mu.Lock()
	role := max(s.roles[strings.ToLower(p.appID)], s.roles[strings.ToLower(p.oid)])
	s.mu.Unlock()
	if role < need {
		s.count("forbidden")
		writeErr(w, http.StatusForbidden, "Forbidden", fmt.Sprintf("Caller is not authorized to perform action on resource.\r\n"+
			"If role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\n"+
			"Caller: appid=%s;oid=%s;iss=https://sts.windows.net/%s/\r\n"+
			"Action: 'Microsoft.KeyVault/vaults/secrets/%s'\r\n"+
			"Resource: '/subscriptions/00000000-0000-0000-0000-00000000c0de/resourcegroups/sam/providers/microsoft.keyvault/vaults/%s/secrets/%s'\r\n"+
			"Assignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: null \r\nVault: %s;location=westeurope\r\n",
			p.appID, p.oid, p.tid, action, vault, strings.ToLower(name), vault), "ForbiddenByRbac")
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	h(w, r, vault, name, parts[2:])
	s.logf("kvsim: %s %s %s", r.Method, vault, r.URL.Path)
}

// bundle is a secret version as the API answers it.
type bundle struct {
	Value       *string           `json:"value,omitempty"`
	ContentType string            `json:"contentType,omitempty"`
	ID          string            `json:"id"`
	Attributes  attributes        `json:"attributes"`
	Tags        map[string]string `json:"tags,omitempty"`
	RecoveryID  string            `json:"recoveryId,omitempty"`
	DeletedDate int64             `json:"deletedDate,omitempty"`
	PurgeDate   int64             `json:"scheduledPurgeDate,omitempty"`
}

type attributes struct {
	Enabled         *bool  `json:"enabled,omitempty"`
	Created         int64  `json:"created,omitempty"`
	Updated         int64  `json:"updated,omitempty"`
	RecoveryLevel   string `json:"recoveryLevel,omitempty"`
	RecoverableDays int    `json:"recoverableDays,omitempty"`
}

func (s *Sim) bundleOf(vault, name string, v *Version, withValue bool) bundle {
	en := v.Enabled
	b := bundle{ContentType: v.ContentType, ID: VaultURL(vault) + "/secrets/" + name + "/" + v.ID,
		Attributes: attributes{Enabled: &en, Created: v.Created.Unix(), Updated: v.Updated.Unix(), RecoveryLevel: "Recoverable+Purgeable", RecoverableDays: 90},
		Tags:       v.Tags}
	if withValue {
		val := v.Value
		b.Value = &val
	}
	return b
}

func notFound(w http.ResponseWriter, name string) {
	writeErr(w, http.StatusNotFound, "SecretNotFound", fmt.Sprintf("A secret with (name/id) %s was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182", name), "")
}

// live is the secret if it exists and is not deleted; s.mu held.
func (s *Sim) live(vault, name string) *secret {
	sec := s.secrets[key(vault, name)]
	if sec == nil || sec.deleted != nil || len(sec.versions) == 0 {
		return nil
	}
	return sec
}

func validName(n string) bool {
	if n == "" || len(n) > 127 {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func (s *Sim) serveSet(w http.ResponseWriter, r *http.Request, vault, name string, _ []string) {
	if !validName(name) {
		writeErr(w, http.StatusBadRequest, "BadParameter", "The request URI contains an invalid name: "+name, "")
		return
	}
	var body struct {
		Value       *string           `json:"value"`
		ContentType string            `json:"contentType"`
		Tags        map[string]string `json:"tags"`
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil || json.Unmarshal(raw, &body) != nil || body.Value == nil {
		writeErr(w, http.StatusBadRequest, "BadParameter", "Property value is required.", "")
		return
	}
	if len(*body.Value) > 25*1024 {
		writeErr(w, http.StatusBadRequest, "BadParameter", "Secret value is too long (25 KB at most).", "")
		return
	}
	if len(body.Tags) > 15 {
		writeErr(w, http.StatusBadRequest, "BadParameter", "Too many tags (15 at most).", "")
		return
	}
	for k, v := range body.Tags {
		if len(k) > 512 || len(v) > 256 {
			writeErr(w, http.StatusBadRequest, "BadParameter", "Tag name or value too long.", "")
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec := s.secrets[key(vault, name)]; sec != nil && sec.deleted != nil {
		writeErr(w, http.StatusConflict, "Conflict", fmt.Sprintf("Secret %s is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.", name), "ObjectIsDeletedButRecoverable")
		return
	}
	v := s.put(vault, name, *body.Value, body.ContentType, body.Tags)
	writeJSON(w, http.StatusOK, s.bundleOf(vault, name, v, true))
}

func (s *Sim) serveGet(w http.ResponseWriter, r *http.Request, vault, name string, rest []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.live(vault, name)
	if sec == nil {
		notFound(w, name)
		return
	}
	v := sec.versions[len(sec.versions)-1]
	if len(rest) == 1 && rest[0] != "" {
		v = nil
		for _, c := range sec.versions {
			if c.ID == rest[0] {
				v = c
			}
		}
		if v == nil {
			notFound(w, name+"/"+rest[0])
			return
		}
	}
	if !v.Enabled {
		writeErr(w, http.StatusForbidden, "Forbidden", "Operation get is not allowed on a disabled secret.", "SecretDisabled")
		return
	}
	writeJSON(w, http.StatusOK, s.bundleOf(vault, name, v, true))
}

func (s *Sim) serveVersions(w http.ResponseWriter, r *http.Request, vault, name string, _ []string) {
	q := r.URL.Query()
	size := 25
	if n, err := strconv.Atoi(q.Get("maxresults")); err == nil && n > 0 && n <= 25 {
		size = n
	}
	skip, _ := strconv.Atoi(q.Get("$skiptoken"))
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.live(vault, name)
	if sec == nil {
		notFound(w, name)
		return
	}
	// Newest first, as a list answer gives no order guarantee anyway.
	vs := append([]*Version(nil), sec.versions...)
	for i, j := 0, len(vs)-1; i < j; i, j = i+1, j-1 {
		vs[i], vs[j] = vs[j], vs[i]
	}
	type item struct {
		ID          string            `json:"id"`
		ContentType string            `json:"contentType,omitempty"`
		Attributes  attributes        `json:"attributes"`
		Tags        map[string]string `json:"tags,omitempty"`
	}
	page := struct {
		Value    []item  `json:"value"`
		NextLink *string `json:"nextLink"`
	}{Value: []item{}}
	if skip < 0 || skip > len(vs) {
		skip = len(vs)
	}
	end := min(skip+size, len(vs))
	for _, v := range vs[skip:end] {
		b := s.bundleOf(vault, name, v, false)
		page.Value = append(page.Value, item{ID: b.ID, ContentType: b.ContentType, Attributes: b.Attributes, Tags: b.Tags})
	}
	if end < len(vs) {
		next := fmt.Sprintf("%s/secrets/%s/versions?api-version=%s&maxresults=%d&$skiptoken=%d", VaultURL(vault), name, q.Get("api-version"), size, end)
		page.NextLink = &next
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Sim) serveUpdate(w http.ResponseWriter, r *http.Request, vault, name string, rest []string) {
	var body struct {
		ContentType *string                  `json:"contentType"`
		Attributes  *struct{ Enabled *bool } `json:"attributes"`
		Tags        map[string]string        `json:"tags"`
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil || json.Unmarshal(raw, &body) != nil {
		writeErr(w, http.StatusBadRequest, "BadParameter", "The request body is not valid JSON.", "")
		return
	}
	if len(body.Tags) > 15 {
		writeErr(w, http.StatusBadRequest, "BadParameter", "Too many tags (15 at most).", "")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.live(vault, name)
	if sec == nil {
		notFound(w, name)
		return
	}
	var v *Version
	for _, c := range sec.versions {
		if rest[0] == "" && c == sec.versions[len(sec.versions)-1] || c.ID == rest[0] {
			v = c
		}
	}
	if v == nil {
		notFound(w, name+"/"+rest[0])
		return
	}
	if body.Attributes != nil && body.Attributes.Enabled != nil {
		v.Enabled = *body.Attributes.Enabled
	}
	if body.Tags != nil {
		v.Tags = body.Tags
	}
	if body.ContentType != nil {
		v.ContentType = *body.ContentType
	}
	v.Updated = s.now().UTC().Truncate(time.Second)
	writeJSON(w, http.StatusOK, s.bundleOf(vault, name, v, false))
}

func (s *Sim) deletedBundle(vault, name string, sec *secret) bundle {
	b := s.bundleOf(vault, name, sec.versions[len(sec.versions)-1], false)
	b.RecoveryID = VaultURL(vault) + "/deletedsecrets/" + name
	b.DeletedDate = sec.deleted.Unix()
	b.PurgeDate = sec.deleted.Add(90 * 24 * time.Hour).Unix()
	return b
}

func (s *Sim) serveDelete(w http.ResponseWriter, r *http.Request, vault, name string, _ []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.live(vault, name)
	if sec == nil {
		notFound(w, name)
		return
	}
	t := s.now()
	sec.deleted = &t
	writeJSON(w, http.StatusOK, s.deletedBundle(vault, name, sec))
}

func (s *Sim) serveGetDeleted(w http.ResponseWriter, r *http.Request, vault, name string, _ []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.deletedSecret(w, vault, name)
	if sec == nil {
		return
	}
	writeJSON(w, http.StatusOK, s.deletedBundle(vault, name, sec))
}

// deletedSecret is the soft-deleted secret name, or nil after answering 404 as Key
// Vault does. The caller holds s.mu.
func (s *Sim) deletedSecret(w http.ResponseWriter, vault, name string) *secret {
	sec := s.secrets[key(vault, name)]
	if sec == nil || sec.deleted == nil {
		writeErr(w, http.StatusNotFound, "SecretNotFound", fmt.Sprintf("Deleted Secret not found: %s", name), "")
		return nil
	}
	return sec
}

func (s *Sim) serveRecover(w http.ResponseWriter, r *http.Request, vault, name string, _ []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.deletedSecret(w, vault, name)
	if sec == nil {
		return
	}
	sec.deleted = nil
	writeJSON(w, http.StatusOK, s.bundleOf(vault, name, sec.versions[len(sec.versions)-1], false))
}
