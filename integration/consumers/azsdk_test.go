package consumers

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/hashicorp/go-azure-sdk/sdk/auth"
	"github.com/hashicorp/go-azure-sdk/sdk/environments"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
)

// goAzureSDKChild makes the test binary a program using go-azure-sdk's Azure CLI
// authorizer (as Terraform's azurerm provider does). It runs in a process of its own:
// the authorizer caches az's answers in process-wide state, and a real tool starts
// fresh each time.
const goAzureSDKChild = "PCTOKEN_TEST_GO_AZURE_SDK"

// goAzureSDKAnswer is what the child prints: the token it got and the tenant the
// authorizer settled on.
type goAzureSDKAnswer struct {
	Token  string    `json:"token"`
	Expiry time.Time `json:"expiry"`
	Type   string    `json:"type"`
	Error  string    `json:"error"`
}

// TestGoAzureSDKChild is the child's body; it does nothing in a normal run.
func TestGoAzureSDKChild(t *testing.T) {
	if os.Getenv(goAzureSDKChild) == "" {
		t.Skip("runs only as the child of TestGoAzureSDKAzureCLIAuthorizer")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var ans goAzureSDKAnswer
	a, err := auth.NewAzureCliAuthorizer(ctx, auth.AzureCliAuthorizerOptions{
		Api:                environments.AzurePublic().ResourceManager,
		TenantId:           os.Getenv(goAzureSDKChild + "_TENANT"),
		SubscriptionIdHint: os.Getenv(goAzureSDKChild + "_SUBSCRIPTION"),
	})
	if err == nil {
		tok, terr := a.Token(ctx, nil)
		if err = terr; err == nil {
			ans = goAzureSDKAnswer{Token: tok.AccessToken, Expiry: tok.Expiry, Type: tok.TokenType}
		}
	}
	if err != nil {
		ans.Error = err.Error()
	}
	json.NewEncoder(os.Stdout).Encode(ans)
}

// TestGoAzureSDKAzureCLIAuthorizer: hashicorp/go-azure-sdk's Azure CLI authorizer
// (Terraform's azurerm provider with use_cli) runs az version, az account show,
// az account list and az account get-access-token through the documented shim and
// gets a Resource Manager token from the simulator, in the home tenant and in a
// customer's.
func TestGoAzureSDKAzureCLIAuthorizer(t *testing.T) {
	e := newEnv(t)
	e.Consent("--profile", "contoso")
	shims := installShims(t)
	const sub = "00000000-0000-0000-0000-00000000beef"
	for _, tc := range []struct {
		name       string
		env        []string
		wantTenant string
		wantErr    string
	}{
		// No tenant given: the authorizer takes az account show's tenantId.
		{name: "home tenant", wantTenant: entrasim.HomeTenantID},
		// ARM_TENANT_ID: the authorizer passes --tenant.
		{name: "customer tenant", env: []string{"_TENANT=" + entrasim.CustomerTenantID}, wantTenant: entrasim.CustomerTenantID},
		// Terraform with subscription_id: the authorizer checks az account list for it,
		// then passes --subscription; PCTOKEN_TENANT names the subscription's tenant.
		{name: "customer subscription", env: []string{"_TENANT=" + entrasim.CustomerTenantID, "_SUBSCRIPTION=" + sub, "ARM_SUBSCRIPTION_ID=" + sub, "PCTOKEN_TENANT=" + entrasim.CustomerTenantID}, wantTenant: entrasim.CustomerTenantID},
		// A subscription the shim was not told about is refused by the authorizer
		// itself, from az account list, as it is with the real az.
		{name: "unknown subscription", env: []string{"_SUBSCRIPTION=" + sub, "ARM_SUBSCRIPTION_ID=00000000-0000-0000-0000-0000000000aa"}, wantErr: "is not known by Azure CLI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			extra := []string{goAzureSDKChild + "=1", "PCTOKEN_PROFILE=contoso", "PATH=" + e.path(shims), "TZ=Asia/Kathmandu"}
			for _, kv := range tc.env {
				if strings.HasPrefix(kv, "_") {
					kv = goAzureSDKChild + kv
				}
				extra = append(extra, kv)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestGoAzureSDKChild$", "-test.v=false")
			cmd.Env = e.environ(extra...)
			cmd.Dir = e.Dir
			out, stderr, code := run(t, cmd, "")
			line, _, _ := strings.Cut(out, "\n")
			var ans goAzureSDKAnswer
			if err := json.Unmarshal([]byte(line), &ans); err != nil {
				t.Fatalf("child (exit %d) printed %q: %v\nstderr: %s", code, out, err, stderr)
			}
			if tc.wantErr != "" {
				if !strings.Contains(ans.Error, tc.wantErr) || ans.Token != "" {
					t.Fatalf("error %q, want %q", ans.Error, tc.wantErr)
				}
				return
			}
			if ans.Error != "" {
				t.Fatalf("go-azure-sdk: %s", ans.Error)
			}
			c, err := e.Sim.ValidateAccessToken(ans.Token)
			if err != nil {
				t.Fatalf("token: %v", err)
			}
			if c.TenantID != tc.wantTenant || strings.TrimSuffix(c.Audience, "/") != "https://management.azure.com" || c.UPN != entrasim.UserUPN {
				t.Errorf("token for tenant %s, audience %s, user %s; want %s", c.TenantID, c.Audience, c.UPN, tc.wantTenant)
			}
			// go-azure-sdk reads expiresOn as local time (TZ is a +05:45 zone here).
			if !ans.Expiry.Equal(c.ExpiresAt) || ans.Type != "Bearer" {
				t.Errorf("expiry %v (%s), token expires %v", ans.Expiry, ans.Type, c.ExpiresAt)
			}
		})
	}
}

// TestAzShimAnswers: the documented shim answers az's account and version commands
// in az's shapes, refuses the rest the way az does (ERROR: on stderr, nothing on
// stdout), and keeps the contract's exit codes.
func TestAzShimAnswers(t *testing.T) {
	e := newEnv(t)
	shims := installShims(t)
	az := func(env []string, args ...string) (string, string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := e.command(ctx, append([]string{"PATH=" + e.path(shims), "PCTOKEN_PROFILE=contoso"}, env...), filepath.Join(shims, "az"), args...)
		return run(t, cmd, "")
	}

	// Before consent: az's ERROR line, the helper's remedy, exit 3.
	out, stderr, code := az(nil, "account", "show", "-o=json")
	if code != 3 || out != "" || !strings.HasPrefix(stderr, "ERROR: ") || !strings.Contains(stderr, "pctoken-helper consent --profile contoso") {
		t.Fatalf("account show before consent: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	e.Consent("--profile", "contoso")

	out, _, code = az(nil, "version", "-o=json")
	var ver map[string]any
	if err := json.Unmarshal([]byte(out), &ver); err != nil || code != 0 || ver["azure-cli"] == nil {
		t.Fatalf("version: exit %d, %q", code, out)
	}
	if ext, _ := ver["extensions"].(map[string]any); ext["pctoken-helper"] == nil {
		t.Errorf("version names no pctoken-helper: %s", out)
	}

	type account struct {
		EnvironmentName, HomeTenantID, ID, Name, State, TenantID string
		IsDefault                                                bool
		User                                                     struct{ Name, Type string }
	}
	var acc account
	out, stderr, code = az(nil, "account", "show", "-o", "json")
	if err := json.Unmarshal([]byte(out), &acc); err != nil || code != 0 {
		t.Fatalf("account show: exit %d, %q %s", code, out, stderr)
	}
	if acc.ID != entrasim.HomeTenantID || acc.TenantID != entrasim.HomeTenantID || acc.Name != "N/A(tenant level account)" || !acc.IsDefault ||
		acc.User.Name != entrasim.UserUPN || acc.User.Type != "user" || acc.EnvironmentName != "AzureCloud" || acc.State != "Enabled" {
		t.Errorf("account show without a subscription: %+v", acc)
	}

	// A subscription from the environment, in the tenant PCTOKEN_TENANT names.
	const sub = "00000000-0000-0000-0000-00000000beef"
	out, _, code = az([]string{"AZURE_SUBSCRIPTION_ID=" + sub, "PCTOKEN_TENANT=" + entrasim.CustomerTenantID}, "account", "show", "--query", "[id, tenantId]")
	if code != 2 {
		t.Errorf("a multi-select query: exit %d, %q", code, out)
	}
	for _, q := range []struct{ query, want string }{{"id", sub}, {"tenantId", entrasim.CustomerTenantID}, {"user.name", entrasim.UserUPN}} {
		out, stderr, code = az([]string{"AZURE_SUBSCRIPTION_ID=" + sub, "PCTOKEN_TENANT=" + entrasim.CustomerTenantID}, "account", "show", "--query", q.query, "-o", "tsv")
		if code != 0 || out != q.want+"\n" {
			t.Errorf("account show --query %s -o tsv: exit %d, %q %s", q.query, code, out, stderr)
		}
	}
	var list []account
	out, _, code = az([]string{"ARM_SUBSCRIPTION_ID=" + sub}, "account", "list")
	if err := json.Unmarshal([]byte(out), &list); err != nil || code != 0 || len(list) != 1 || list[0].ID != sub || !list[0].IsDefault {
		t.Errorf("account list: exit %d, %q", code, out)
	}
	out, stderr, code = az(nil, "account", "show", "--subscription", "My Subscription")
	if code != 2 || out != "" || !strings.Contains(stderr, "subscription id") {
		t.Errorf("a subscription name: exit %d, %q %q", code, out, stderr)
	}

	// The script idiom: the bare token.
	out, stderr, code = az(nil, "account", "get-access-token", "--resource", "https://management.azure.com/", "--query", "accessToken", "-o", "tsv")
	if code != 0 {
		t.Fatalf("get-access-token -o tsv: exit %d %s", code, stderr)
	}
	if c, err := e.Sim.ValidateAccessToken(strings.TrimSuffix(out, "\n")); err != nil || c.TenantID != entrasim.HomeTenantID || !strings.HasPrefix(c.Audience, "https://management.azure.com") {
		t.Errorf("token from -o tsv: %v %+v", err, c)
	}
	// No resource: az's default, the cloud's management.core.windows.net.
	out, _, code = az(nil, "account", "get-access-token", "-t", entrasim.CustomerTenantDomain, "--query", "accessToken", "-o", "tsv")
	if c, err := e.Sim.ValidateAccessToken(strings.TrimSuffix(out, "\n")); err != nil || code != 0 || c.TenantID != entrasim.CustomerTenantID || !strings.HasPrefix(c.Audience, "https://management.core.windows.net") {
		t.Errorf("default resource: exit %d, %v, %+v", code, err, c)
	}

	// What is not answered: exit 2, az's ERROR line naming what is.
	for _, args := range [][]string{{"group", "list"}, {"login"}, {"account", "get-access-token", "-o", "table"}, {"account", "get-access-token", "--resource-type", "ms-graph"}} {
		out, stderr, code = az(nil, args...)
		if code != 2 || out != "" || !strings.HasPrefix(stderr, "ERROR: ") {
			t.Errorf("az %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), code, out, stderr)
		}
		if len(args) < 3 && !strings.Contains(stderr, "account get-access-token, az account show") {
			t.Errorf("az %s: the message does not name what is answered: %s", strings.Join(args, " "), stderr)
		}
	}
	out, _, code = az(nil, "account", "--help")
	if code != 0 || !strings.Contains(out, "account get-access-token") {
		t.Errorf("--help: exit %d, %q", code, out)
	}
}

// TestGoAzureSDKNotInBinary: go-azure-sdk is a test dependency only.
func TestGoAzureSDKNotInBinary(t *testing.T) {
	e := newEnv(t)
	out, err := exec.Command("go", "version", "-m", e.Bin).CombinedOutput()
	if err != nil {
		t.Skipf("go version -m: %v", err)
	}
	if !strings.Contains(string(out), "github.com/pctoken/pctoken-helper") {
		t.Fatalf("go version -m shows no module information:\n%s", out)
	}
	for _, mod := range []string{"hashicorp/go-azure-sdk", "hashicorp/go-version", "Azure/go-autorest"} {
		if strings.Contains(string(out), mod) {
			t.Errorf("the binary links %s:\n%s", mod, fmt.Sprint(string(out)))
		}
	}
}

// TestAzShimDocumentedShapes: the account example of docs/protocols.md is what the
// shim prints for its settings, word for word; the version example has the real keys.
func TestAzShimDocumentedShapes(t *testing.T) {
	e := newEnv(t)
	e.Consent("--profile", "contoso")
	shims := installShims(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	az := func(env []string, args ...string) string {
		t.Helper()
		cmd := e.command(ctx, append([]string{"PATH=" + e.path(shims), "PCTOKEN_PROFILE=contoso"}, env...), filepath.Join(shims, "az"), args...)
		out, stderr, code := run(t, cmd, "")
		if code != 0 {
			t.Fatalf("az %s: exit %d: %s", strings.Join(args, " "), code, stderr)
		}
		return out
	}
	account := az([]string{"AZURE_SUBSCRIPTION_ID=00000000-0000-0000-0000-00000000beef", "PCTOKEN_TENANT=" + entrasim.CustomerTenantID}, "account", "show", "-o", "json")
	if doc := recipe(t, "protocols.md", "shape az-account"); account != doc {
		t.Errorf("docs/protocols.md az account show example:\n%s\nthe shim prints:\n%s", doc, account)
	}
	version := az(nil, "version")
	doc := recipe(t, "protocols.md", "shape az-version")
	if got, want := strings.Join(jsonShape(t, version), "\n"), strings.Join(jsonShape(t, doc), "\n"); got != want {
		t.Errorf("docs/protocols.md az version example:\n%s\nthe shim prints:\n%s", doc, version)
	}
	if !strings.Contains(version, `"azure-cli": "`+strings.Split(strings.Split(doc, `"azure-cli": "`)[1], `"`)[0]+`"`) {
		t.Errorf("the documented azure-cli version differs:\n%s\n%s", doc, version)
	}
}

// TestAzureCLICredentialSubscription: azidentity's AzureCLICredential with a
// subscription (a name, quoted, as azidentity allows) gets a token in the tenant the
// helper targets: az would pick the subscription's tenant, the helper's is
// PCTOKEN_TENANT.
func TestAzureCLICredentialSubscription(t *testing.T) {
	e := newEnv(t)
	e.Consent("--profile", "contoso")
	e.Vars["PCTOKEN_TENANT"] = entrasim.CustomerTenantID
	e.useShims(t)
	cred, err := azidentity.NewAzureCLICredential(&azidentity.AzureCLICredentialOptions{Subscription: "Fabrikam Production"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
	if err != nil {
		t.Fatalf("AzureCLICredential: %v", err)
	}
	c, err := e.Sim.ValidateAccessToken(tok.Token)
	if err != nil || c.TenantID != entrasim.CustomerTenantID {
		t.Fatalf("token: %v, tenant %s", err, c.TenantID)
	}
}
