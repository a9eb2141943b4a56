package cli

import (
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/failure"
)

func TestParseRotateAfter(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"": 7 * 24 * time.Hour, "7d": 7 * 24 * time.Hour, "1d": 24 * time.Hour, "36h": 36 * time.Hour, "1h": time.Hour,
		"0": -1, "0d": -1, "59m": -1, "-7d": -1, "soon": -1, "7days": -1, "d": -1, "99999d": -1, "1e9h": -1,
	} {
		got, err := parseRotateAfter(in)
		switch {
		case want < 0 && (err == nil || failure.KindOf(err) != failure.Usage):
			t.Errorf("%q: %v, %v; want a usage error", in, got, err)
		case want >= 0 && (err != nil || got != want):
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
}
