package entrasim

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/cache"
	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"
)

// childEnv makes the test binary act as a child process that trusts the simulator only
// through SSL_CERT_FILE (see TestChildProcessTrustsCAFile).
const childEnv = "ENTRASIM_TEST_CHILD_GET"

func TestMain(m *testing.M) {
	if target := os.Getenv(childEnv); target != "" {
		os.Exit(childGet(target))
	}
	os.Exit(m.Run())
}

// childGet fetches target with Go's default client and system roots, and prints the
// status.
func childGet(target string) int {
	resp, err := http.Get(target)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer resp.Body.Close()
	fmt.Println(resp.Status)
	return 0
}

func newSim(t testing.TB, opts Options) *Sim {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// memCache is an MSAL cache accessor that keeps the serialized cache so tests can look
// at the refresh token MSAL holds.
type memCache struct {
	mu   sync.Mutex
	data []byte
}

func (m *memCache) Replace(_ context.Context, u cache.Unmarshaler, _ cache.ReplaceHints) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.data == nil {
		return nil
	}
	return u.Unmarshal(m.data)
}

func (m *memCache) Export(_ context.Context, mr cache.Marshaler, _ cache.ExportHints) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	data, err := mr.Marshal()
	m.data = data
	return err
}

// refreshToken returns the one refresh token in the cache.
func (m *memCache) refreshToken(t *testing.T) string {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	var doc struct {
		RefreshToken map[string]struct {
			Secret string `json:"secret"`
		}
	}
	if err := json.Unmarshal(m.data, &doc); err != nil {
		t.Fatalf("msal cache: %v", err)
	}
	if len(doc.RefreshToken) != 1 {
		t.Fatalf("msal cache holds %d refresh tokens, want 1", len(doc.RefreshToken))
	}
	for _, rt := range doc.RefreshToken {
		return rt.Secret
	}
	return ""
}

func newPublic(t testing.TB, s *Sim, clientID, tenant string, c *memCache) public.Client {
	t.Helper()
	opts := []public.Option{
		public.WithAuthority(s.URL() + "/" + tenant),
		public.WithHTTPClient(s.HTTPClient()),
		public.WithInstanceDiscovery(false),
	}
	if c != nil {
		opts = append(opts, public.WithCache(c))
	}
	app, err := public.New(clientID, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return app
}

// deviceLogin signs in through the device code flow and returns the result.
func deviceLogin(t *testing.T, app public.Client, scopes ...string) public.AuthResult {
	t.Helper()
	ctx := testCtx(t)
	dc, err := app.AcquireTokenByDeviceCode(ctx, scopes)
	if err != nil {
		t.Fatalf("device code: %v", err)
	}
	res, err := dc.AuthenticationResult(ctx)
	if err != nil {
		t.Fatalf("device code result: %v", err)
	}
	return res
}

// pkce returns a verifier and its S256 challenge.
func pkce() (verifier, challenge string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// noRedirect is a client that shows the authorize endpoint's redirects instead of
// following them.
func noRedirect(s *Sim) *http.Client {
	return &http.Client{
		Transport:     s.HTTPClient().Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// authorize runs the authorize endpoint with query response mode and returns the
// redirect it answers.
func authorize(t testing.TB, s *Sim, tenant string, params url.Values) *url.URL {
	t.Helper()
	resp, err := noRedirect(s).Get(s.URL() + "/" + tenant + "/oauth2/v2.0/authorize?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("authorize answered %d: %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// authCodeParams are the parameters of a typical loopback sign-in.
func authCodeParams(clientID, redirect, challenge string, scopes ...string) url.Values {
	return url.Values{
		"client_id":             {clientID},
		"response_type":         {"code"},
		"redirect_uri":          {redirect},
		"scope":                 {strings.Join(append(scopes, "openid", "profile", "offline_access"), " ")},
		"state":                 {"state-123"},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
	}
}

// entraError is the error body as tests read it.
type entraError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
	ErrorURI         string `json:"error_uri"`
	Suberror         string `json:"suberror"`
	Claims           string `json:"claims"`
}

// callErr extracts the Entra error from an MSAL error.
func callErr(t *testing.T, err error) (int, entraError) {
	t.Helper()
	var ce msalerrors.CallErr
	if !errors.As(err, &ce) {
		t.Fatalf("want an MSAL CallErr, got %T: %v", err, err)
	}
	body, rerr := io.ReadAll(ce.Resp.Body)
	if rerr != nil {
		t.Fatal(rerr)
	}
	var e entraError
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return ce.Resp.StatusCode, e
}

// postToken sends a raw token request.
func postToken(t testing.TB, s *Sim, tenant string, form url.Values) (*http.Response, []byte) {
	t.Helper()
	resp, err := s.HTTPClient().PostForm(s.URL()+"/"+tenant+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// wantError checks a raw error answer.
func wantError(t testing.TB, resp *http.Response, body []byte, status int, oauthErr string, code int) entraError {
	t.Helper()
	var e entraError
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if resp.StatusCode != status || e.Error != oauthErr || len(e.ErrorCodes) != 1 || e.ErrorCodes[0] != code {
		t.Fatalf("got %d %s %v, want %d %s [%d]; body %s", resp.StatusCode, e.Error, e.ErrorCodes, status, oauthErr, code, body)
	}
	return e
}

type tokenBody struct {
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope"`
	ExpiresIn    int64  `json:"expires_in"`
	ExtExpiresIn int64  `json:"ext_expires_in"`
	RefreshIn    int64  `json:"refresh_in"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	ClientInfo   string `json:"client_info"`
}

func wantToken(t testing.TB, resp *http.Response, body []byte) tokenBody {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token answered %d: %s", resp.StatusCode, body)
	}
	var tb tokenBody
	if err := json.Unmarshal(body, &tb); err != nil {
		t.Fatal(err)
	}
	return tb
}

// signIn gets a refresh token for clientID the way a raw client would: authorize, then
// redeem the code.
func signIn(t testing.TB, s *Sim, clientID, tenant string, scopes ...string) tokenBody {
	t.Helper()
	verifier, challenge := pkce()
	redirect := "http://localhost:8400"
	loc := authorize(t, s, tenant, authCodeParams(clientID, redirect, challenge, scopes...))
	resp, body := postToken(t, s, tenant, url.Values{
		"grant_type":    {"authorization_code"},
		"client_id":     {clientID},
		"code":          {loc.Query().Get("code")},
		"redirect_uri":  {redirect},
		"code_verifier": {verifier},
		"scope":         {strings.Join(append(scopes, "openid", "profile", "offline_access"), " ")},
		"client_info":   {"1"},
	})
	return wantToken(t, resp, body)
}

func refreshForm(clientID, rt string, scopes ...string) url.Values {
	return url.Values{
		"grant_type":    {"refresh_token"},
		"client_id":     {clientID},
		"refresh_token": {rt},
		"scope":         {strings.Join(append(scopes, "openid", "profile", "offline_access"), " ")},
		"client_info":   {"1"},
	}
}
