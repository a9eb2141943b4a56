package mi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// runChild is the test binary as the program mi exec runs. Modes:
//
//   - azidentity: a program written against azidentity, unchanged. MI_CHILD_CRED picks
//     ManagedIdentityCredential (mi) or DefaultAzureCredential (dac), MI_CHILD_CLIENT_ID
//     an identity, MI_CHILD_SCOPES the scopes (comma separated); for each scope it gets
//     a token twice, calls the URL at the same place in MI_CHILD_APIS through an azcore
//     pipeline (trusting MI_CHILD_API_CA), and prints a JSON line.
//   - request: asks IDENTITY_ENDPOINT for an ARM token with IDENTITY_HEADER; exit 0
//     when it got one.
//   - env: prints the managed-identity and secret variables it was given, as JSON.
//   - exit: exits with MI_CHILD_CODE.
//   - wait: prints "ready" and the endpoint, then waits for SIGINT or SIGTERM; prints which came and
//     exits 40 + its number. With MI_CHILD_DIE=1 it does not catch them, so the signal
//     ends it.
func runChild(mode string) int {
	switch mode {
	case "azidentity":
		return childAzidentity()
	case "env":
		out := map[string]string{}
		for _, k := range []string{"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT",
			"IDENTITY_SERVER_THUMBPRINT", "PCTOKEN_CLIENT_SECRET", "PCTOKEN_FILE_PASSPHRASE", "PCTOKEN_REFRESH_TOKEN", "MI_KEEP"} {
			if v, ok := os.LookupEnv(k); ok {
				out[k] = v
			}
		}
		json.NewEncoder(os.Stdout).Encode(out)
		return 0
	case "request":
		// What any SDK does with the two variables.
		req, err := http.NewRequest("GET", os.Getenv("IDENTITY_ENDPOINT")+"?api-version=2019-08-01&resource=https://management.azure.com", nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		req.Header.Set("X-IDENTITY-HEADER", os.Getenv("IDENTITY_HEADER"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer resp.Body.Close()
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if json.NewDecoder(resp.Body).Decode(&tok) != nil || resp.StatusCode != 200 || tok.AccessToken == "" {
			fmt.Fprintln(os.Stderr, "no token: status", resp.StatusCode)
			return 1
		}
		return 0
	case "exit":
		n, _ := strconv.Atoi(os.Getenv("MI_CHILD_CODE"))
		return n
	case "wait":
		if os.Getenv("MI_CHILD_DIE") == "1" {
			fmt.Println("ready", os.Getenv("IDENTITY_ENDPOINT"))
			time.Sleep(time.Minute)
			return 0
		}
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
		fmt.Println("ready", os.Getenv("IDENTITY_ENDPOINT"))
		select {
		case s := <-sigs:
			n := int(s.(syscall.Signal))
			fmt.Printf("got %d\n", n)
			return 40 + n
		case <-time.After(time.Minute):
			return 0
		}
	}
	fmt.Fprintf(os.Stderr, "unknown child mode %q\n", mode)
	return 99
}

func childAzidentity() int {
	var cred azcore.TokenCredential
	var err error
	id := os.Getenv("MI_CHILD_CLIENT_ID")
	kind := os.Getenv("MI_CHILD_CRED")
	switch kind {
	case "dac":
		if id != "" {
			// DefaultAzureCredential takes the managed identity's client id from here.
			os.Setenv("AZURE_CLIENT_ID", id)
		}
		cred, err = azidentity.NewDefaultAzureCredential(nil)
	default:
		o := &azidentity.ManagedIdentityCredentialOptions{}
		if id != "" {
			o.ID = azidentity.ClientID(id)
		}
		cred, err = azidentity.NewManagedIdentityCredential(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "credential:", err)
		return 98
	}
	failed := false
	apis := strings.Split(os.Getenv("MI_CHILD_APIS"), ",")
	for i, scope := range strings.Split(os.Getenv("MI_CHILD_SCOPES"), ",") {
		line := childLine{Cred: kind + "-go", Scope: scope}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		first, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
		if err == nil {
			var second azcore.AccessToken
			second, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
			line.Same = err == nil && second.Token == first.Token
			line.Token, line.ExpiresOn = first.Token, first.ExpiresOn.Unix()
		}
		if err == nil && i < len(apis) && apis[i] != "" {
			line.APIStatus, err = callAPI(ctx, cred, scope, apis[i])
		}
		cancel()
		if err != nil {
			failed = true
			line.Error = err.Error()
		}
		json.NewEncoder(os.Stdout).Encode(line)
	}
	if failed {
		return 1
	}
	return 0
}

// callAPI sends a GET to url through an azcore pipeline authenticated by cred,
// as any Azure SDK client does.
func callAPI(ctx context.Context, cred azcore.TokenCredential, scope, url string) (int, error) {
	pem, err := os.ReadFile(os.Getenv("MI_CHILD_API_CA"))
	if err != nil {
		return 0, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	pl := runtime.NewPipeline("mitest", "v0.0.0", runtime.PipelineOptions{
		PerRetry: []policy.Policy{runtime.NewBearerTokenPolicy(cred, []string{scope}, nil)},
	}, &policy.ClientOptions{Transport: &http.Client{Transport: tr}, Retry: policy.RetryOptions{MaxRetries: -1}})
	req, err := runtime.NewRequest(ctx, http.MethodGet, url)
	if err != nil {
		return 0, err
	}
	resp, err := pl.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
