package failure

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

func TestErrorfWrapsItsCause(t *testing.T) {
	err := Errorf(Configuration, "failed to read profile %s: %w", "contoso", fs.ErrPermission)
	if !errors.Is(err, fs.ErrPermission) || KindOf(err) != Configuration || err.Error() != "failed to read profile contoso: permission denied" {
		t.Fatalf("%v (kind %v)", err, KindOf(err))
	}
	if KindOf(fmt.Errorf("outer: %w", err)) != Configuration {
		t.Fatal("the kind must survive wrapping")
	}
	if KindOf(errors.New("plain")) != Unexpected || Wrap(Transient, nil) != nil {
		t.Fatal("plain errors are unexpected; nil stays nil")
	}
	if KindOf(Wrap(Transient, err)) != Configuration {
		t.Fatal("Wrap must keep a kind already given")
	}
}

func TestWithProfile(t *testing.T) {
	inner := &Error{Kind: ConsentNeeded, AADSTS: "700082", Message: "expired"}
	wrapped := fmt.Errorf("renew: %w", inner)
	err := WithProfile(wrapped, "contoso")
	var e *Error
	if !errors.As(err, &e) || e.Profile != "contoso" || e.AADSTS != "700082" || err.Error() != "renew: expired (AADSTS700082)" {
		t.Fatalf("%v: %+v", err, e)
	}
	if inner.Profile != "" {
		t.Fatal("WithProfile must not change the error it was given (it may be shared)")
	}
	if ProfileOf(WithProfile(err, "other")) != "contoso" {
		t.Fatal("the first profile named wins")
	}
	if ProfileOf(WithProfile(errors.New("x"), "p")) != "p" || WithProfile(nil, "p") != nil {
		t.Fatal("plain errors get a profile; nil stays nil")
	}
}

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
