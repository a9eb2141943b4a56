package consumers

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
)

// installShims writes the az and azd shims of docs/protocols.md into a folder of
// their own and returns it.
func installShims(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, marker := range map[string]string{"az": "az-shim", "azd": "azd-shim"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(recipe(t, "protocols.md", marker)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// useShims makes the test process the program the docs describe: the shims first on
// PATH, the helper behind them, and the profile chosen with PCTOKEN_PROFILE.
func (e *env) useShims(t *testing.T) {
	e.Vars["PCTOKEN_PROFILE"] = "contoso"
	e.setProcessEnv(t)
	t.Setenv("PATH", e.path(installShims(t)))
}

// TestAzureCLICredentialThroughShim: azidentity's AzureCLICredential runs
// `az account get-access-token` through /bin/sh; the shim answers with the helper,
// and an Azure SDK pipeline sends the token to an ARM endpoint of the customer.
func TestAzureCLICredentialThroughShim(t *testing.T) {
	e := newEnv(t)
	e.Consent("--profile", "contoso")
	e.useShims(t)

	arm := apiServer{sim: e.Sim, audience: "https://management.azure.com", tenant: entrasim.CustomerTenantID}
	var seen []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := arm.check(bearer(r)); err != nil {
			seen = append(seen, err.Error())
			w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token"`)
			http.Error(w, `{"error":{"code":"InvalidAuthenticationToken"}}`, http.StatusUnauthorized)
			return
		}
		io.WriteString(w, `{"value":[{"subscriptionId":"00000000-0000-0000-0000-00000000beef","displayName":"Fabrikam"}]}`)
	}))
	t.Cleanup(srv.Close)

	cred, err := azidentity.NewAzureCLICredential(&azidentity.AzureCLICredentialOptions{TenantID: entrasim.CustomerTenantID})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
	if err != nil {
		t.Fatalf("AzureCLICredential: %v", err)
	}
	c, err := arm.check(tok.Token)
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	if !tok.ExpiresOn.Equal(c.ExpiresAt) {
		t.Errorf("ExpiresOn %v, token expires %v", tok.ExpiresOn, c.ExpiresAt)
	}

	// The SDK's own pipeline, as every ARM client builds it.
	pl := runtime.NewPipeline("consumers", "v0.0.1", runtime.PipelineOptions{
		PerRetry: []policy.Policy{runtime.NewBearerTokenPolicy(cred, []string{"https://management.azure.com/.default"}, nil)},
	}, &policy.ClientOptions{Transport: srv.Client()})
	req, err := runtime.NewRequest(ctx, http.MethodGet, srv.URL+"/subscriptions?api-version=2022-12-01")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := pl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Fabrikam") {
		t.Fatalf("ARM answered %d %s; refused %v", resp.StatusCode, body, seen)
	}

	// A v1 resource with a trailing slash, as older SDKs ask: the shim keeps the
	// double slash az itself sends.
	tok, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.core.windows.net//.default"}})
	if err != nil {
		t.Fatalf("AzureCLICredential, management.core.windows.net: %v", err)
	}
	if c, err := e.Sim.ValidateAccessToken(tok.Token); err != nil || !strings.HasPrefix(c.Audience, "https://management.core.windows.net") {
		t.Fatalf("token for %q: %v", c.Audience, err)
	}
}

// TestAzureDeveloperCLICredentialThroughShim does the same with azd's shape.
func TestAzureDeveloperCLICredentialThroughShim(t *testing.T) {
	e := newEnv(t)
	e.Consent("--profile", "contoso")
	e.useShims(t)
	cred, err := azidentity.NewAzureDeveloperCLICredential(&azidentity.AzureDeveloperCLICredentialOptions{TenantID: entrasim.CustomerTenantID})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{entrasim.GraphScope}})
	if err != nil {
		t.Fatalf("AzureDeveloperCLICredential: %v", err)
	}
	c, err := e.Sim.ValidateAccessToken(tok.Token)
	if err != nil || c.TenantID != entrasim.CustomerTenantID || c.Audience != "https://graph.microsoft.com" {
		t.Fatalf("token: %v, tenant %s, audience %s", err, c.TenantID, c.Audience)
	}
	if !tok.ExpiresOn.Equal(c.ExpiresAt) {
		t.Errorf("ExpiresOn %v, token expires %v", tok.ExpiresOn, c.ExpiresAt)
	}

	// A claims challenge cannot be met unattended: the shim says so.
	_, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{entrasim.GraphScope}, Claims: `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`})
	if err == nil {
		t.Fatal("a claims challenge was answered")
	}
}

// TestAzureCLICredentialFailure: without consent, azidentity reports the helper's
// message and remedy.
func TestAzureCLICredentialFailure(t *testing.T) {
	e := newEnv(t)
	e.useShims(t)
	cred, err := azidentity.NewAzureCLICredential(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
	if err == nil || !strings.Contains(err.Error(), "pctoken-helper consent --profile contoso") {
		t.Fatalf("AzureCLICredential error: %v", err)
	}
}

// TestAzOutputLocalTime: az prints expiresOn in local time; tools that parse it (old
// azidentity, scripts) must get the same instant as expires_on in any zone.
func TestAzOutputLocalTime(t *testing.T) {
	e := newEnv(t)
	e.Consent()
	for _, zone := range []string{"UTC", "Asia/Kathmandu", "America/St_Johns"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Skipf("no time zone data: %v", err)
		}
		e.Vars["TZ"] = zone
		var az struct {
			AccessToken string `json:"accessToken"`
			ExpiresOn   string `json:"expiresOn"`
			ExpiresOnTS int64  `json:"expires_on"`
			Tenant      string `json:"tenant"`
			TokenType   string `json:"tokenType"`
		}
		out := e.MustRun("get", "-o", "az", "--scope", "arm").Stdout
		if err := json.Unmarshal([]byte(out), &az); err != nil {
			t.Fatal(err)
		}
		local, err := time.ParseInLocation("2006-01-02 15:04:05.999999", az.ExpiresOn, loc)
		if err != nil || local.Unix() != az.ExpiresOnTS {
			t.Errorf("TZ=%s: expiresOn %q is %v, expires_on %d", zone, az.ExpiresOn, local, az.ExpiresOnTS)
		}
		if az.Tenant != entrasim.HomeTenantID || az.TokenType != "Bearer" {
			t.Errorf("tenant %q, tokenType %q", az.Tenant, az.TokenType)
		}
	}
}
