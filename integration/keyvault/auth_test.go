package keyvault

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azcloud "github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
)

// --keyvault-auth managed-identity: the machine's identity endpoint (App Service's
// protocol, as azidentity speaks it) hands out the vault's token; here a local endpoint
// that gets it from the Entra simulator for the writer's service principal.
func TestManagedIdentity(t *testing.T) {
	w := newWorld(t)
	w.machine(writerID, writerSecret).Consent()
	cred, err := azidentity.NewClientSecretCredential(entrasim.HomeTenantID, writerID, writerSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions:            azcore.ClientOptions{Transport: w.entra.HTTPClient(), Cloud: azcloud.Configuration{ActiveDirectoryAuthorityHost: w.entra.URL() + "/"}},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	const header = "test-identity-header"
	var mu sync.Mutex
	var asked []string
	askedSoFar := func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), asked...) }
	mi := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-IDENTITY-HEADER") != header || r.URL.Query().Get("api-version") != "2019-08-01" {
			http.Error(rw, "bad request", http.StatusBadRequest)
			return
		}
		resource := r.URL.Query().Get("resource")
		mu.Lock()
		asked = append(asked, resource)
		mu.Unlock()
		tok, err := cred.GetToken(r.Context(), policy.TokenRequestOptions{Scopes: []string{resource + "/.default"}})
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadGateway)
			return
		}
		json.NewEncoder(rw).Encode(map[string]string{"access_token": tok.Token, "expires_on": strconv.FormatInt(tok.ExpiresOn.Unix(), 10),
			"resource": resource, "token_type": "Bearer"})
	}))
	defer mi.Close()

	m := w.machine("", "")
	for _, k := range []string{"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_AUTHORITY_HOST"} {
		delete(m.Vars, k)
	}
	m.Vars["PCTOKEN_KEYVAULT_AUTH"] = "managed-identity"
	m.Vars["IDENTITY_ENDPOINT"] = mi.URL + "/msi/token"
	m.Vars["IDENTITY_HEADER"] = header
	m.MustRun("get", "-s", "graph")
	if a := askedSoFar(); len(a) != 1 || a[0] != "https://vault.azure.net" {
		t.Fatalf("the identity endpoint was asked for %v", a)
	}
	// The vault's token is cached: a refresh in a new process does not ask again.
	m.MustRun("get", "-s", "graph", "--force-refresh")
	if a := askedSoFar(); len(a) != 1 {
		t.Fatalf("the identity endpoint was asked %d times", len(a))
	}
}
