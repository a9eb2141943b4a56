package entrasim

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// Options configure a simulator. The zero value is ready to use.
type Options struct {
	// Dir receives ca.pem and the client certificate PEM; a temporary folder removed by
	// Close if empty.
	Dir string
	// Addr is the listen address, default "127.0.0.1:0"; it must be a loopback address.
	Addr string
	// Logf, if set, receives one line per request; refresh tokens appear only as a short
	// fingerprint.
	Logf func(format string, args ...any)
	// ControlAPI serves the controls over HTTPS under /_sim/, for a process other than
	// the one that started the simulator (see integration/cmd/entrasim).
	ControlAPI bool
	// Now is the simulator's clock, time.Now if nil. Token times and refresh-token
	// inactivity follow it; TLS certificates do not.
	Now func() time.Time
}

// Sim is a running simulator. Its methods are safe for concurrent use.
type Sim struct {
	opts       Options
	now        func() time.Time
	url        string // https://127.0.0.1:PORT
	host       string // 127.0.0.1:PORT
	pki        *pki
	caFile     string
	clientFile string
	tempDir    string // removed by Close when the simulator created it
	srv        *http.Server
	client     *http.Client

	// life guards closed so that no request starts once Close waits for active ones.
	life    sync.RWMutex
	closed  bool
	active  sync.WaitGroup
	done    chan struct{}
	closeMu sync.Once

	mu      sync.Mutex // guards everything below
	tenants map[string]*tenant
	domains map[string]string // verified domain -> tenant id
	clients map[string]*Client
	codes   map[string]*authCode
	devices map[string]*deviceCode // by device_code
	rts     map[string]*refreshToken

	lastAuthorize *AuthorizeRecord
	lastDevice    *DeviceCodeRecord
	ctl           controls
	stats         Stats
	dir           directory // Graph's GDAP relationships and Partner Center's customers (directory.go)
}

// Start generates the simulator's keys, writes its files and starts serving.
func Start(opts Options) (*Sim, error) {
	s := &Sim{
		opts:    opts,
		now:     opts.Now,
		done:    make(chan struct{}),
		tenants: map[string]*tenant{},
		domains: map[string]string{},
		clients: map[string]*Client{},
		codes:   map[string]*authCode{},
		devices: map[string]*deviceCode{},
		rts:     map[string]*refreshToken{},
		ctl:     defaultControls(),
		stats:   newStats(),
	}
	if s.now == nil {
		s.now = time.Now
	}
	var err error
	if s.pki, err = newPKI(); err != nil {
		return nil, fmt.Errorf("start simulator: %w", err)
	}
	s.defaultWorld()

	dir := opts.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "entrasim-"); err != nil {
			return nil, fmt.Errorf("start simulator: %w", err)
		}
		s.tempDir = dir
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("start simulator: %w", err)
	}
	if s.caFile, s.clientFile, err = s.pki.writeFiles(dir); err != nil {
		s.removeTemp()
		return nil, fmt.Errorf("start simulator: %w", err)
	}

	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if err := loopbackOnly(addr); err != nil {
		s.removeTemp()
		return nil, fmt.Errorf("start simulator: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		s.removeTemp()
		return nil, fmt.Errorf("start simulator: %w", err)
	}
	s.host = ln.Addr().String()
	s.url = "https://" + s.host

	pool := x509.NewCertPool()
	pool.AddCert(s.pki.caCert)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	tr.MaxIdleConnsPerHost = 64
	s.client = &http.Client{Transport: tr}

	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{s.pki.tlsCert},
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"h2", "http/1.1"},
		},
		// Handshake failures of clients that do not trust the CA are their problem.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() { _ = s.srv.Serve(tls.NewListener(&resetListener{Listener: ln, s: s}, s.srv.TLSConfig)) }()
	return s, nil
}

// Close stops serving, releases hanging requests and removes the temporary folder it
// created. Files in Options.Dir stay.
func (s *Sim) Close() error {
	var err error
	s.closeMu.Do(func() {
		s.life.Lock()
		s.closed = true
		s.life.Unlock()
		// Closing the connections first cancels hung requests the way a client giving up
		// does; done then releases anything still waiting.
		err = s.srv.Close()
		close(s.done)
		s.active.Wait()
		s.client.CloseIdleConnections()
		if rmErr := s.removeTemp(); err == nil {
			err = rmErr
		}
	})
	return err
}

// loopbackOnly refuses listen addresses other machines could reach: the simulator mints
// tokens for anyone who asks.
func loopbackOnly(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("listen address %s is not loopback", addr)
	}
	return nil
}

func (s *Sim) removeTemp() error {
	if s.tempDir == "" {
		return nil
	}
	return os.RemoveAll(s.tempDir)
}

// URL is the authority host, "https://127.0.0.1:PORT"; an authority is URL()+"/"+tenant.
func (s *Sim) URL() string { return s.url }

// CAFile is the PEM of the simulator's CA; child processes trust it with SSL_CERT_FILE.
func (s *Sim) CAFile() string { return s.caFile }

// CertClientPEMFile holds the certificate and private key of CertClientID, as a user
// would pass it with --client-certificate.
func (s *Sim) CertClientPEMFile() string { return s.clientFile }

// CertClientPEM is the content of CertClientPEMFile.
func (s *Sim) CertClientPEM() []byte { return append([]byte(nil), s.pki.clientPEM...) }

// CA is the simulator's root certificate.
func (s *Sim) CA() *x509.Certificate { return s.pki.caCert }

// HTTPClient returns a client that trusts the simulator's CA. It is shared; Close
// drops its idle connections.
func (s *Sim) HTTPClient() *http.Client { return s.client }

// reqCtx carries what one request needs for its answer and its log line.
type reqCtx struct {
	traceID       string
	correlationID string
	notes         []string
}

func (rc *reqCtx) note(n string) { rc.notes = append(rc.notes, n) }

// statusWriter remembers the status for the log line.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ServeHTTP routes a request to an endpoint. It is exported only so that the
// simulator can be its own http.Handler.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.life.RLock()
	if s.closed {
		s.life.RUnlock()
		http.Error(w, "simulator closed", http.StatusServiceUnavailable)
		return
	}
	s.active.Add(1)
	s.life.RUnlock()
	defer s.active.Done()

	rc := &reqCtx{traceID: newGUID(), correlationID: r.Header.Get("client-request-id")}
	if !looksLikeGUID(rc.correlationID) {
		rc.correlationID = newGUID()
	}
	sw := &statusWriter{ResponseWriter: w}
	sw.Header().Set("x-ms-request-id", rc.traceID)
	start := time.Now()
	s.route(sw, r, rc)
	if s.opts.Logf != nil {
		status := sw.status
		if status == 0 {
			status = 499 // the client gave up before an answer (a hung request)
		}
		s.opts.Logf("entrasim: %s %s -> %d %s (%s)", r.Method, r.URL.Path, status,
			strings.Join(rc.notes, " "), time.Since(start).Round(time.Millisecond))
	}
}

func (s *Sim) route(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	path := r.URL.Path
	if strings.HasPrefix(path, "/_sim/") {
		if s.opts.ControlAPI {
			s.serveControl(w, r)
			return
		}
		http.NotFound(w, r)
		return
	}
	if s.serveDirectory(w, r, rc) {
		return
	}
	if path == "/devicelogin" {
		s.count("devicelogin")
		s.serveDeviceLogin(w, r)
		return
	}
	seg, rest, ok := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if !ok || seg == "" {
		http.NotFound(w, r)
		return
	}
	switch rest {
	case "v2.0/.well-known/openid-configuration":
		s.count("openid-configuration")
		s.serveOpenIDConfig(w, r, rc, seg)
	case "discovery/v2.0/keys":
		s.count("keys")
		s.serveKeys(w, r, rc, seg)
	case "discovery/instance":
		if !strings.EqualFold(seg, "common") {
			http.NotFound(w, r)
			return
		}
		s.count("discovery")
		s.serveInstanceDiscovery(w, r, rc)
	case "oauth2/v2.0/authorize":
		s.count("authorize")
		s.serveAuthorize(w, r, rc, seg)
	case "oauth2/v2.0/devicecode":
		s.count("devicecode")
		s.serveDeviceCode(w, r, rc, seg)
	case "oauth2/v2.0/token":
		s.count("token")
		s.serveToken(w, r, rc, seg)
	case "oauth2/v2.0/logout":
		s.count("logout")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "<!DOCTYPE html><html><body><p>You signed out of your account.</p></body></html>")
	default:
		http.NotFound(w, r)
	}
}

func (s *Sim) count(endpoint string) {
	s.mu.Lock()
	s.stats.Requests[endpoint]++
	s.mu.Unlock()
}

// randomToken returns prefix plus n random bytes in base64url, the look of Entra's
// opaque codes and refresh tokens.
func randomToken(prefix string, n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// guidFrom derives a stable GUID from a name, for objects the world does not list
// (service principals).
func guidFrom(name string) string {
	sum := sha256.Sum256([]byte(name))
	h := hex.EncodeToString(sum[:16])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func looksLikeGUID(v string) bool {
	if len(v) != 36 {
		return false
	}
	for i, c := range v {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}

// fingerprint names a secret in logs without revealing it.
func fingerprint(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return "#" + hex.EncodeToString(sum[:4])
}
