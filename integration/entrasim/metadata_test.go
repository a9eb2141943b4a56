package entrasim

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func getJSON(t *testing.T, s *Sim, path string, v any) int {
	t.Helper()
	resp, err := s.HTTPClient().Get(s.URL() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode
}

func TestOpenIDConfiguration(t *testing.T) {
	s := newSim(t, Options{})
	for _, tc := range []struct{ seg, pathTenant, issuerTenant string }{
		{HomeTenantID, HomeTenantID, HomeTenantID},
		{strings.ToUpper(HomeTenantDomain), HomeTenantID, HomeTenantID},
		{CustomerTenantDomain, CustomerTenantID, CustomerTenantID},
		{"organizations", "organizations", "{tenantid}"},
		{"common", "common", "{tenantid}"},
	} {
		var doc openIDConfig
		if status := getJSON(t, s, "/"+tc.seg+"/v2.0/.well-known/openid-configuration", &doc); status != http.StatusOK {
			t.Fatalf("%s: status %d", tc.seg, status)
		}
		base := s.URL() + "/" + tc.pathTenant
		if doc.Issuer != s.URL()+"/"+tc.issuerTenant+"/v2.0" || doc.TokenEndpoint != base+"/oauth2/v2.0/token" ||
			doc.AuthorizationEndpoint != base+"/oauth2/v2.0/authorize" || doc.DeviceAuthorizationEndpoint != base+"/oauth2/v2.0/devicecode" ||
			doc.JWKSURI != base+"/discovery/v2.0/keys" || doc.EndSessionEndpoint != base+"/oauth2/v2.0/logout" ||
			len(doc.ResponseModesSupported) != 3 {
			t.Errorf("%s: %+v", tc.seg, doc)
		}
		// MSAL derives the device code URL from the token URL by replacing "token".
		if got := strings.ReplaceAll(doc.TokenEndpoint, "token", "devicecode"); got != doc.DeviceAuthorizationEndpoint {
			t.Errorf("%s: derived device code endpoint %s", tc.seg, got)
		}
	}
	var e entraError
	if status := getJSON(t, s, "/nowhere.example/v2.0/.well-known/openid-configuration", &e); status != 400 ||
		e.Error != "invalid_tenant" || e.ErrorCodes[0] != 90002 {
		t.Errorf("unknown tenant: %d %+v", status, e)
	}
}

func TestKeysVerifyTokens(t *testing.T) {
	s := newSim(t, Options{})
	var jwks struct {
		Keys []jwk `json:"keys"`
	}
	if status := getJSON(t, s, "/"+HomeTenantID+"/discovery/v2.0/keys", &jwks); status != 200 || len(jwks.Keys) != 1 {
		t.Fatalf("keys: %d %+v", status, jwks)
	}
	k := jwks.Keys[0]
	n, _ := base64.RawURLEncoding.DecodeString(k.N)
	e, _ := base64.RawURLEncoding.DecodeString(k.E)
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	der, _ := base64.StdEncoding.DecodeString(k.X5c[0])
	if cert, err := x509.ParseCertificate(der); err != nil || !cert.PublicKey.(*rsa.PublicKey).Equal(pub) {
		t.Fatalf("x5c does not hold the key: %v", err)
	}

	tb := signIn(t, s, PublicClientID, CustomerTenantID, PartnerCenterScope)
	for _, tok := range []string{tb.AccessToken, tb.IDToken} {
		parsed, err := jwt.Parse(tok, func(tk *jwt.Token) (any, error) {
			if tk.Header["kid"] != k.Kid {
				t.Errorf("kid %v, want %s", tk.Header["kid"], k.Kid)
			}
			return pub, nil
		}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(s.URL()+"/"+CustomerTenantID+"/v2.0"))
		if err != nil || !parsed.Valid {
			t.Errorf("token does not verify with the published key: %v", err)
		}
	}
	c, err := s.ValidateAccessToken(tb.AccessToken)
	if err != nil || c.TenantID != CustomerTenantID {
		t.Errorf("claims %+v: %v", c, err)
	}

	// Tampering with the payload breaks the signature.
	parts := strings.Split(tb.AccessToken, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	forged := strings.Replace(string(payload), CustomerTenantID, OtherTenantID, 1)
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(forged))
	if _, err := s.ValidateAccessToken(strings.Join(parts, ".")); err == nil {
		t.Error("a forged token validates")
	}
	// A token of another simulator does not validate here.
	other := newSim(t, Options{})
	if _, err := s.ValidateAccessToken(signIn(t, other, PublicClientID, HomeTenantID, GraphScope).AccessToken); err == nil {
		t.Error("another simulator's token validates")
	}
}

func TestInstanceDiscovery(t *testing.T) {
	s := newSim(t, Options{})
	var doc struct {
		TenantDiscoveryEndpoint string             `json:"tenant_discovery_endpoint"`
		Metadata                []instanceMetadata `json:"metadata"`
	}
	q := url.Values{"api-version": {"1.1"}, "authorization_endpoint": {s.URL() + "/" + HomeTenantDomain + "/oauth2/v2.0/authorize"}}
	if status := getJSON(t, s, "/common/discovery/instance?"+q.Encode(), &doc); status != 200 ||
		doc.TenantDiscoveryEndpoint != s.URL()+"/"+HomeTenantDomain+"/v2.0/.well-known/openid-configuration" ||
		len(doc.Metadata) != 1 || doc.Metadata[0].PreferredNetwork != strings.TrimPrefix(s.URL(), "https://") {
		t.Errorf("discovery: %d %+v", status, doc)
	}
	var e entraError
	q.Set("authorization_endpoint", "https://login.example.com/common/oauth2/v2.0/authorize")
	if status := getJSON(t, s, "/common/discovery/instance?"+q.Encode(), &e); status != 400 || e.Error != "invalid_instance" {
		t.Errorf("foreign instance: %d %+v", status, e)
	}
}

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	s := newSim(t, Options{Dir: dir})
	caPEM, err := os.ReadFile(s.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(caPEM)
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !ca.IsCA || !ca.Equal(s.CA()) {
		t.Fatalf("ca.pem: %v", err)
	}
	fi, err := os.Stat(s.CertClientPEMFile())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("client certificate file: %v %v", fi.Mode(), err)
	}
	if !strings.HasPrefix(s.CAFile(), dir) || !strings.HasPrefix(s.CertClientPEMFile(), dir) {
		t.Error("files outside Options.Dir")
	}

	// Without a Dir the simulator makes a temporary one and removes it on Close.
	tmp, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp.CAFile()); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp.CAFile()); !os.IsNotExist(err) {
		t.Errorf("temporary folder left behind: %v", err)
	}
	if err := tmp.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// A child process trusts the simulator through SSL_CERT_FILE alone.
func TestChildProcessTrustsCAFile(t *testing.T) {
	s := newSim(t, Options{})
	target := s.URL() + "/" + HomeTenantID + "/v2.0/.well-known/openid-configuration"
	run := func(certFile string) (string, error) {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), childEnv+"="+target, "SSL_CERT_FILE="+certFile, "SSL_CERT_DIR="+t.TempDir())
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(s.CAFile()); err != nil || strings.TrimSpace(out) != "200 OK" {
		t.Errorf("with SSL_CERT_FILE: %q %v", out, err)
	}
	empty := t.TempDir() + "/none.pem"
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := run(empty); err == nil || !strings.Contains(out, "certificate") {
		t.Errorf("without the CA the child should fail on the certificate: %q %v", out, err)
	}
}

// logBuffer collects log lines from concurrent handlers.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.b, format+"\n", args...)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestLogsNeverShowRefreshTokens(t *testing.T) {
	logs := &logBuffer{}
	s := newSim(t, Options{Logf: logs.Logf})
	tb := signIn(t, s, PublicClientID, HomeTenantID, PartnerCenterScope)
	resp, body := postToken(t, s, HomeTenantID, refreshForm(PublicClientID, tb.RefreshToken, PartnerCenterScope))
	next := wantToken(t, resp, body)
	out := logs.String()
	for _, secret := range []string{tb.RefreshToken[:40], next.RefreshToken[:40], tb.AccessToken[:40], ClientSecret} {
		if strings.Contains(out, secret) {
			t.Fatalf("log shows a secret:\n%s", out)
		}
	}
	if !strings.Contains(out, "rt="+fingerprint(tb.RefreshToken)) || !strings.Contains(out, "grant=refresh_token") {
		t.Errorf("log lacks the fingerprint:\n%s", out)
	}
}

func TestLogoutAndUnknownPaths(t *testing.T) {
	s := newSim(t, Options{})
	for path, want := range map[string]int{
		"/" + HomeTenantID + "/oauth2/v2.0/logout": 200,
		"/nothing":    404,
		"/":           404,
		"/_sim/stats": 404, // the control API is off by default
		"/" + HomeTenantID + "/discovery/instance": 404,
	} {
		resp, err := s.HTTPClient().Get(s.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}
