package cli

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/pctoken/pctoken-helper/customers"
	"github.com/pctoken/pctoken-helper/protocol"
)

func TestTenantArgs(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"check", "--tenant", "a", "--scope", "graph", "--tenant=b"}, []string{"a", "b"}},
		{[]string{"check", "--all-tenants"}, nil},
		{[]string{"check", "--tenant", "a", "--", "--tenant", "c"}, []string{"a"}},
		{[]string{"check", "--tenant"}, nil},
		{[]string{"check", "--tenants", "x", "--tenant-id", "y"}, nil},
	} {
		if got := tenantArgs(c.args); !slices.Equal(got, c.want) {
			t.Errorf("tenantArgs(%q) = %q, want %q", c.args, got, c.want)
		}
	}
}

// tenants -o ndjson writes lines that get --request reads as they are.
func TestTenantRequestsAreRequests(t *testing.T) {
	var buf bytes.Buffer
	ts := []customers.Tenant{{ID: "11111111-1111-4111-8111-111111111111"}, {ID: "22222222-2222-4222-8222-222222222222"}}
	if err := writeTenantRequests(&buf, ts, "contoso", []string{"https://graph.microsoft.com/.default"}); err != nil {
		t.Fatal(err)
	}
	r := protocol.NewRequestReader(&buf)
	for _, want := range ts {
		req, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if string(req.ID) != `"`+want.ID+`"` || req.Tenant != want.ID || req.Profile != "contoso" || !slices.Equal(req.Scopes, []string{"https://graph.microsoft.com/.default"}) {
			t.Errorf("request %+v", req)
		}
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("after the last line: %v", err)
	}
}
