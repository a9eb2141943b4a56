package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestParseAzArgs: the command lines real clients send, word for word.
func TestParseAzArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		args string
		want AzCall
	}{
		// go-azure-sdk's Azure CLI authorizer (internal/azurecli: "-o=json" appended).
		{"go-azure-sdk version", "version -o=json", AzCall{Command: AzVersion, Output: "json"}},
		{"go-azure-sdk show", "account show -o=json", AzCall{Command: AzAccountShow, Output: "json"}},
		{"go-azure-sdk list", "account list -o=json", AzCall{Command: AzAccountList, Output: "json"}},
		{"go-azure-sdk token tenant", "account get-access-token --scope https://management.azure.com/.default --tenant 0f1e2d3c-0000-4000-8000-00000000fab1 -o=json",
			AzCall{Command: AzGetAccessToken, Scopes: []string{"https://management.azure.com/.default"}, Tenant: "0f1e2d3c-0000-4000-8000-00000000fab1", Output: "json"}},
		{"go-azure-sdk token subscription", "account get-access-token --scope https://management.azure.com/.default --subscription 00000000-0000-0000-0000-00000000beef -o=json",
			AzCall{Command: AzGetAccessToken, Scopes: []string{"https://management.azure.com/.default"}, Subscription: "00000000-0000-0000-0000-00000000beef", Output: "json"}},
		// azidentity's AzureCLICredential.
		{"azidentity", "account get-access-token -o json --resource https://management.azure.com/ --tenant fabrikam.onmicrosoft.com",
			AzCall{Command: AzGetAccessToken, Resource: "https://management.azure.com/", Tenant: "fabrikam.onmicrosoft.com", Output: "json"}},
		// Scripts.
		{"script tsv", "account get-access-token --query accessToken -o tsv --scope a/.default b/.default",
			AzCall{Command: AzGetAccessToken, Scopes: []string{"a/.default", "b/.default"}, Query: "accessToken", Output: "tsv"}},
		{"glued short", "account show -ojsonc -s 00000000-0000-0000-0000-00000000beef", AzCall{Command: AzAccountShow, Output: "jsonc", Subscription: "00000000-0000-0000-0000-00000000beef"}},
		{"global flag first", "--only-show-errors -o none account show", AzCall{Command: AzAccountShow, Output: "none"}},
		{"help", "account get-access-token --tenant -h", AzCall{Command: AzGetAccessToken, Help: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAzArgs(strings.Fields(tc.args))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseAzArgsRefused(t *testing.T) {
	for args, want := range map[string]string{
		"":                                 "not answered",
		"group list":                       "not answered",
		"login --use-device-code":          "not answered",
		"account get-access-token --foo":   `unrecognized arguments: "--foo"`,
		"account list --subscription x":    "does not take it",
		"version --tenant x":               "does not take it",
		"account show extra":               "not answered",
		"account get-access-token --scope": "expected one argument",
		"account get-access-token --resource r --scope s":      "can't be used together",
		"account get-access-token --subscription s --tenant t": "can't be used together",
		"account show -o table":                                "not answered",
		"account show -o xml":                                  "invalid choice",
		"account show --query [?isDefault].id":                 "not answered",
		"account show --query length(@)":                       "not answered",
		"account show --query user.":                           "not answered",
		"account list --all=yes":                               "ignored explicit argument",
		"account show " + strings.Repeat("x", 10000):           "not answered",
	} {
		_, err := ParseAzArgs(strings.Fields(args))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.60q: error %v, want %q", args, err, want)
		}
		if err != nil && len(err.Error()) > 400 {
			t.Errorf("%.60q: error of %d bytes", args, len(err.Error()))
		}
	}
}

// TestAzShapes: the keys and kinds of az's own answers (azure-cli 2.75, keys sorted
// as az sorts them), and the values that tools read.
func TestAzShapes(t *testing.T) {
	doc, err := AzAccountJSON(AzAccount{EnvironmentName: "AzureCloud", TenantID: "t1", User: "u@contoso.com", IsDefault: true})
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "environmentName": "AzureCloud",
  "homeTenantId": "t1",
  "id": "t1",
  "isDefault": true,
  "managedByTenants": [],
  "name": "N/A(tenant level account)",
  "state": "Enabled",
  "tenantId": "t1",
  "user": {
    "name": "u@contoso.com",
    "type": "user"
  }
}
`
	if string(doc) != want {
		t.Errorf("tenant-level account:\n%s\nwant\n%s", doc, want)
	}
	list, err := AzAccountListJSON([]AzAccount{{TenantID: "t1", SubscriptionID: "s1", IsDefault: true}, {TenantID: "t1", SubscriptionID: "s2"}})
	if err != nil {
		t.Fatal(err)
	}
	var accounts []struct {
		ID, Name, TenantID string
		IsDefault          bool
	}
	if err := json.Unmarshal(list, &accounts); err != nil || len(accounts) != 2 {
		t.Fatalf("%v: %s", err, list)
	}
	if accounts[0].ID != "s1" || accounts[0].Name != "s1" || !accounts[0].IsDefault || accounts[1].IsDefault || accounts[1].TenantID != "t1" {
		t.Errorf("list: %+v", accounts)
	}
	v, err := AzVersionJSON("v1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	var ver map[string]any
	json.Unmarshal(v, &ver)
	if ver["azure-cli"] != AzCLIVersion || ver["extensions"].(map[string]any)["pctoken-helper"] != "v1.2.3" {
		t.Errorf("version: %s", v)
	}
}

func TestWriteAzResult(t *testing.T) {
	doc, _ := AzAccountListJSON([]AzAccount{{TenantID: "t1", SubscriptionID: "s1", User: "u"}, {TenantID: "t1", SubscriptionID: "s2"}})
	for _, tc := range []struct{ output, query, want string }{
		{"json", "", string(doc)},
		{"none", "", ""},
		{"tsv", "[1].id", "s2\n"},
		{"tsv", "[-1].id", "s2\n"},
		{"tsv", "[0].user.name", "u\n"},
		{"tsv", "[0].isDefault", "false\n"},
		{"json", "[0].id", "\"s1\"\n"},
		{"json", "[0].user", "{\n  \"name\": \"u\",\n  \"type\": \"user\"\n}\n"},
		{"json", "[5].id", ""},
		{"tsv", `[0]."tenantId"`, "t1\n"},
	} {
		var out bytes.Buffer
		if err := WriteAzResult(&out, doc, tc.output, tc.query); err != nil {
			t.Errorf("-o %s --query %s: %v", tc.output, tc.query, err)
			continue
		}
		if out.String() != tc.want {
			t.Errorf("-o %s --query %s: %q, want %q", tc.output, tc.query, out.String(), tc.want)
		}
	}
	var out bytes.Buffer
	if err := WriteAzResult(&out, doc, "tsv", "[0]"); !errors.Is(err, ErrAzUnanswered) || out.Len() != 0 {
		t.Errorf("tsv of an object: %v, wrote %q", err, out.String())
	}
}

// FuzzParseAzArgs: any command line is read or refused, never a panic; an error
// quotes a bounded piece of the input; what is read is one of the answered commands
// and its output is written without error.
func FuzzParseAzArgs(f *testing.F) {
	for _, seed := range []string{
		"account get-access-token --scope https://management.azure.com/.default --tenant t -o=json",
		"account get-access-token -o json --resource https://management.azure.com/ --subscription \"My sub\"",
		"account show -ojsonc --query user.name -s x",
		"-o tsv account list --query [0].id",
		"version --query \"azure-cli\" -o tsv",
		"account show --query [99999999999999999999].id",
		"account show --query \"",
		"--help",
		"account get-access-token --scope -t",
	} {
		f.Add(seed)
	}
	doc, _ := AzAccountListJSON([]AzAccount{{TenantID: "t1", SubscriptionID: "s1"}})
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Split(line, " ")
		c, err := ParseAzArgs(args)
		if err != nil {
			if len(err.Error()) > 600 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
			return
		}
		if c.Help {
			return
		}
		if !contains(AzCommands, c.Command) {
			t.Fatalf("read an unanswered command %q", c.Command)
		}
		var out bytes.Buffer
		err = WriteAzResult(&out, doc, c.Output, c.Query)
		if err != nil && !errors.Is(err, ErrAzUnanswered) {
			t.Fatalf("write: %v", err)
		}
		if c.Output == "json" && err == nil && out.Len() > 0 && !json.Valid(out.Bytes()) {
			t.Fatalf("not JSON: %q", out.String())
		}
		if c.Output == "tsv" && err == nil && !utf8.Valid(out.Bytes()) && utf8.ValidString(line) {
			t.Fatalf("tsv not UTF-8: %q", out.String())
		}
	})
}
