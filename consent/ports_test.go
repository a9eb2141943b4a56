package consent_test

import (
	"strings"
	"testing"

	"github.com/pctoken/pctoken-helper/consent"
)

func TestParsePortRange(t *testing.T) {
	valid := map[string]consent.PortRange{
		"8400-8999":   {8400, 8999},
		"8400":        {8400, 8400},
		" 8400-8401 ": {8400, 8401},
		"1-65535":     {1, 65535},
		"08400":       {8400, 8400},
	}
	for in, want := range valid {
		got, err := consent.ParsePortRange(in)
		if err != nil || got != want {
			t.Errorf("ParsePortRange(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-", "0", "65536", "8999-8400", "8400-", "-8400", "+8400", "8400-+8401",
		"84 00", "8400-8401-8402", "8400:8401", "abc", "0x20", "999999", "8400.0"} {
		if got, err := consent.ParsePortRange(in); err == nil {
			t.Errorf("ParsePortRange(%q) = %v, want an error", in, got)
		} else if !strings.Contains(err.Error(), "invalid port range") {
			t.Errorf("ParsePortRange(%q): unclear error %q", in, err)
		}
	}
}

func TestPortRangeText(t *testing.T) {
	def, err := consent.ParsePortRange(consent.DefaultPortRange)
	if err != nil || def != (consent.PortRange{First: 8400, Last: 8999}) {
		t.Fatalf("DefaultPortRange parses to %v, %v", def, err)
	}
	for _, r := range []consent.PortRange{{8400, 8999}, {8400, 8400}} {
		b, err := r.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back consent.PortRange
		if err := back.UnmarshalText(b); err != nil || back != r {
			t.Errorf("%v -> %q -> %v, %v", r, b, back, err)
		}
	}
	var r consent.PortRange
	if err := r.UnmarshalText([]byte("9-8")); err == nil {
		t.Error("UnmarshalText accepted 9-8")
	}
}
