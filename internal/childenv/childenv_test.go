package childenv

import (
	"slices"
	"testing"

	"github.com/pctoken/pctoken-helper/redact"
)

func TestEnviron(t *testing.T) {
	redact.Register("a-registered-passphrase-value")
	in := []string{
		"PATH=/usr/bin",
		"PCTOKEN_CLIENT_SECRET=s3cret-value",
		"PCTOKEN_FILE_PASSPHRASE=pass",
		"PCTOKEN_REFRESH_TOKEN=0.AAAA",
		"pctoken_refresh_token=0.AAAA",
		"MY_COPY=a-registered-passphrase-value",
		"BROWSER=firefox",
		"DROP_ME=1",
		"PCTOKEN_PROFILE=contoso",
		"EMPTY=",
	}
	got := Environ(in, "DROP_ME")
	want := []string{"PATH=/usr/bin", "BROWSER=firefox", "PCTOKEN_PROFILE=contoso", "EMPTY="}
	if !slices.Equal(got, want) {
		t.Fatalf("Environ = %q, want %q", got, want)
	}
}
