package failure

import (
	"errors"
	"fmt"
	"testing"
)

func TestRemedyOfReachesTheLayerThatKnew(t *testing.T) {
	inner := &Error{Kind: Configuration, Message: "secret deleted", Remedy: "az keyvault secret recover"}
	outer := Errorf(Configuration, "failed to store the refresh token: %w", inner)
	if r := RemedyOf(fmt.Errorf("context: %w", outer)); r != inner.Remedy {
		t.Fatalf("RemedyOf = %q", r)
	}
	if r := RemedyOf(errors.New("plain")); r != "" {
		t.Fatalf("RemedyOf(plain) = %q", r)
	}
	if r := RemedyOf(Errorf(Transient, "no remedy")); r != "" {
		t.Fatalf("RemedyOf(no remedy) = %q", r)
	}
}
