package kvsim_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azcloud "github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/kvsim"
	"github.com/pctoken/pctoken-helper/integration/tlsproxy"
)

const (
	readerID     = "0f1e2d3c-0000-4000-8000-0000000000e1"
	readerSecret = "reader-test-only-secret"
)

type world struct {
	entra *entrasim.Sim
	vault *kvsim.Sim
	proxy *tlsproxy.Proxy
	hc    *http.Client
}

func newWorld(t *testing.T) *world {
	t.Helper()
	e, err := entrasim.Start(entrasim.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	e.AddClient(entrasim.Client{ID: readerID, Secret: readerSecret})
	v, err := kvsim.Start(kvsim.Options{Entra: e, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	p, err := tlsproxy.Start(tlsproxy.Route{Pattern: "*.vault.azure.net:443", Target: v.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	pool := x509.NewCertPool()
	for _, f := range []string{e.CAFile(), v.CAFile()} {
		pem, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pool.AppendCertsFromPEM(pem)
	}
	proxyURL, _ := url.Parse(p.URL())
	hc := &http.Client{Transport: &http.Transport{
		Proxy: func(r *http.Request) (*url.URL, error) {
			if r.URL.Hostname() == "127.0.0.1" {
				return nil, nil
			}
			return proxyURL, nil
		},
		TLSClientConfig: &tls.Config{RootCAs: pool},
	}}
	v.Grant(entrasim.ConfidentialClientID, kvsim.Write)
	v.Grant(readerID, kvsim.Read)
	return &world{entra: e, vault: v, proxy: p, hc: hc}
}

func (w *world) client(t *testing.T, clientID, secret string) *azsecrets.Client {
	t.Helper()
	co := azcore.ClientOptions{Transport: w.hc, Cloud: azcloud.Configuration{ActiveDirectoryAuthorityHost: w.entra.URL() + "/"}}
	cred, err := azidentity.NewClientSecretCredential(entrasim.HomeTenantID, clientID, secret, &azidentity.ClientSecretCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	c, err := azsecrets.NewClient(kvsim.VaultURL("contoso-sam"), cred, &azsecrets.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: w.hc, Retry: policy.RetryOptions{MaxRetries: 2, RetryDelay: 10 * time.Millisecond}}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func status(err error) int {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

func ptr(s string) *string { return &s }

func TestRealClientAgainstSimulator(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	c := w.client(t, entrasim.ConfidentialClientID, entrasim.ClientSecret)

	if _, err := c.GetSecret(ctx, "sam-rt", "", nil); status(err) != 404 {
		t.Fatalf("missing secret: %v", err)
	}
	var ids []string
	for _, v := range []string{"rt-1", "rt-2", "rt-3"} {
		r, err := c.SetSecret(ctx, "sam-rt", azsecrets.SetSecretParameters{Value: ptr(v), Tags: map[string]*string{"who": ptr("test")}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID.Version())
	}
	got, err := c.GetSecret(ctx, "sam-rt", "", nil)
	if err != nil || *got.Value != "rt-3" || got.ID.Version() != ids[2] || *got.Tags["who"] != "test" || got.Attributes.Created == nil {
		t.Fatalf("latest: %+v %v", got, err)
	}
	if old, err := c.GetSecret(ctx, "sam-rt", ids[0], nil); err != nil || *old.Value != "rt-1" {
		t.Fatalf("version: %v", err)
	}
	// The versions list, paged by one: every version, no values.
	pager := c.NewListSecretPropertiesVersionsPager("sam-rt", nil)
	n := 0
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Value)
	}
	if n != 3 {
		t.Fatalf("%d versions listed", n)
	}
	off := false
	if _, err := c.UpdateSecretProperties(ctx, "sam-rt", ids[0], azsecrets.UpdateSecretPropertiesParameters{SecretAttributes: &azsecrets.SecretAttributes{Enabled: &off}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetSecret(ctx, "sam-rt", ids[0], nil); status(err) != 403 {
		t.Fatalf("disabled version readable: %v", err)
	}
	vs := w.vault.Versions("contoso-sam", "sam-rt")
	if len(vs) != 3 || vs[0].Enabled || !vs[2].Enabled {
		t.Fatalf("versions: %+v", vs)
	}

	// A reader may read, not write; the 403 names caller and action.
	r := w.client(t, readerID, readerSecret)
	if got, err := r.GetSecret(ctx, "sam-rt", "", nil); err != nil || *got.Value != "rt-3" {
		t.Fatalf("reader: %v", err)
	}
	_, err = r.SetSecret(ctx, "sam-rt", azsecrets.SetSecretParameters{Value: ptr("x")}, nil)
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 403 || re.ErrorCode != "Forbidden" {
		t.Fatalf("reader write: %v", err)
	}

	// Soft delete: the name answers 404 to reads, 409 to writes, until recovered.
	if _, err := c.DeleteSecret(ctx, "sam-rt", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetSecret(ctx, "sam-rt", "", nil); status(err) != 404 {
		t.Fatalf("deleted read: %v", err)
	}
	if _, err := c.SetSecret(ctx, "sam-rt", azsecrets.SetSecretParameters{Value: ptr("x")}, nil); status(err) != 409 {
		t.Fatalf("write of a deleted name: %v", err)
	}
	if _, err := c.GetDeletedSecret(ctx, "sam-rt", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RecoverDeletedSecret(ctx, "sam-rt", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetSecret(ctx, "sam-rt", "", nil); err != nil || *got.Value != "rt-3" {
		t.Fatalf("recovered: %v", err)
	}

	st := w.vault.Stats()
	// Each client was challenged once: the challenge policy keeps its token after.
	// Sets: three versions, the reader's refused one, the one refused by soft delete.
	if st["challenge"] != 2 || st["set"] != 5 || st["forbidden"] != 1 {
		t.Fatalf("stats: %v", st)
	}
	if w.proxy.Tunnels("contoso-sam.vault.azure.net:443") == 0 || len(w.proxy.Refused()) != 0 {
		t.Fatalf("proxy: %d tunnels, refused %v", w.proxy.Tunnels("contoso-sam.vault.azure.net:443"), w.proxy.Refused())
	}
}

func TestThrottlingAndFaults(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	c := w.client(t, entrasim.ConfidentialClientID, entrasim.ClientSecret)
	if _, err := c.SetSecret(ctx, "s", azsecrets.SetSecretParameters{Value: ptr("v")}, nil); err != nil {
		t.Fatal(err)
	}
	// A 429 with Retry-After and a 503 are retried by the client and then succeed.
	w.vault.ThrottleNext(1, time.Second)
	w.vault.FailNext(1, 503)
	if _, err := c.GetSecret(ctx, "s", "", nil); err != nil {
		t.Fatal(err)
	}
	// The create limit: the second create in the window is throttled.
	w.vault.SetLimits(1, 100, time.Hour)
	if _, err := c.SetSecret(ctx, "s", azsecrets.SetSecretParameters{Value: ptr("v2")}, nil); err != nil {
		t.Fatal(err)
	}
	_, err := c.SetSecret(ctx, "s", azsecrets.SetSecretParameters{Value: ptr("v3")}, &azsecrets.SetSecretOptions{})
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 429 || re.RawResponse.Header.Get("Retry-After") == "" {
		t.Fatalf("over the create limit: %v", err)
	}
	// A hung request ends with the client's context.
	w.vault.HangNext(1)
	hctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := c.GetSecret(hctx, "s", "", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hang: %v", err)
	}
	st := w.vault.Stats()
	if st["throttled"] < 2 || st["failed"] != 1 || st["hung"] != 1 {
		t.Fatalf("stats: %v", st)
	}
}

func TestTokensTheVaultRefuses(t *testing.T) {
	w := newWorld(t)
	// A token for another resource (Graph) is refused with a challenge.
	tok, err := entraToken(w, "https://graph.microsoft.com/.default")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", kvsim.VaultURL("contoso-sam")+"/secrets/s?api-version=2025-07-01", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := w.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("graph token: %d", resp.StatusCode)
	}
	// Any host outside the route is refused by the proxy.
	req, _ = http.NewRequest("GET", "https://login.microsoftonline.com/", nil)
	if _, err := w.hc.Do(req); err == nil {
		t.Fatal("the proxy tunnelled an unrouted host")
	}
	if r := w.proxy.Refused(); len(r) != 1 || r[0] != "login.microsoftonline.com:443" {
		t.Fatalf("refused: %v", r)
	}
}

func entraToken(w *world, scope string) (string, error) {
	co := azcore.ClientOptions{Transport: w.hc, Cloud: azcloud.Configuration{ActiveDirectoryAuthorityHost: w.entra.URL() + "/"}}
	cred, err := azidentity.NewClientSecretCredential(entrasim.HomeTenantID, entrasim.ConfidentialClientID, entrasim.ClientSecret, &azidentity.ClientSecretCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: true})
	if err != nil {
		return "", err
	}
	t, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{scope}})
	return t.Token, err
}
