package cache

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestFreshAtTheBoundary(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	const margin = 5 * time.Minute
	entry := func(left time.Duration) Entry {
		return Entry{AccessToken: "t", ExpiresOn: now.Add(left)}
	}
	tests := []struct {
		name   string
		e      Entry
		margin time.Duration
		want   bool
	}{
		{"exactly the margin left", entry(margin), margin, true},
		{"margin minus 1ns left", entry(margin - time.Nanosecond), margin, false},
		{"an hour left", entry(time.Hour), margin, true},
		{"expired", entry(-time.Second), margin, false},
		{"zero margin, expires now", entry(0), 0, true},
		{"negative margin counts as zero", entry(-time.Nanosecond), -time.Hour, false},
		{"no token", Entry{ExpiresOn: now.Add(time.Hour)}, margin, false},
		{"no expiry", Entry{AccessToken: "t"}, margin, false},
	}
	for _, tt := range tests {
		if got := Fresh(tt.e, now, tt.margin); got != tt.want {
			t.Errorf("%s: Fresh = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestExpiresOnRoundTripKeepsTheMargin(t *testing.T) {
	c := openTemp(t)
	k := baseKey()
	// A token that expires 0.9 s past a whole second: storing whole seconds must
	// round down, or the loaded entry would look valid for longer than it is.
	expires := time.Date(2030, 1, 2, 3, 4, 5, 900_000_000, time.UTC)
	if err := c.Store(k, Entry{AccessToken: "t", ExpiresOn: expires}); err != nil {
		t.Fatal(err)
	}
	got, ok := c.Load(k)
	if !ok {
		t.Fatal("miss after store")
	}
	if want := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC); !got.ExpiresOn.Equal(want) {
		t.Fatalf("ExpiresOn = %v, want %v", got.ExpiresOn, want)
	}
	// Rounding down keeps the margin: at the last instant the loaded entry is
	// fresh, the original is fresh too, and a nanosecond later the loaded one
	// is not.
	margin := DefaultMinValidity
	last := got.ExpiresOn.Add(-margin)
	if !Fresh(got, last, margin) || Fresh(got, last.Add(time.Nanosecond), margin) {
		t.Error("loaded entry does not keep its boundary")
	}
	if !Fresh(Entry{AccessToken: "t", ExpiresOn: expires}, last, margin) {
		t.Error("loaded entry is fresh when the original is not")
	}
}

func validFile(t testing.TB) []byte {
	k := baseKey().Canonical()
	data, err := encodeEntry(k, Entry{
		AccessToken: "eyJ0eXAiOiJKV1QifQ.e30.c2ln",
		ExpiresOn:   time.Unix(1900000000, 0),
		TenantID:    "00000000-0000-4000-8000-00000000000a",
		Scopes:      []string{"https://api.partnercenter.microsoft.com/user_impersonation"},
		Account:     "admin@fabrikam.onmicrosoft.com",
	})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestDecodeEntryRejects(t *testing.T) {
	good := string(validFile(t))
	tests := map[string]string{
		"empty":             "",
		"not json":          "hello",
		"truncated":         good[:len(good)/2],
		"other version":     strings.Replace(good, `"v":1`, `"v":2`, 1),
		"no version":        strings.Replace(good, `"v":1,`, ``, 1),
		"no token":          strings.Replace(good, `"access_token":"eyJ0eXAiOiJKV1QifQ.e30.c2ln"`, `"access_token":""`, 1),
		"no expiry":         strings.Replace(good, `"expires_on":1900000000`, `"expires_on":0`, 1),
		"string expiry":     strings.Replace(good, `"expires_on":1900000000`, `"expires_on":"1900000000"`, 1),
		"key not canonical": strings.Replace(good, `"tenant":"fabrikam.onmicrosoft.com"`, `"tenant":"Fabrikam.onmicrosoft.com"`, 1),
		"two documents":     good + good,
		"json array":        "[" + good + "]",
	}
	for name, data := range tests {
		if data == good {
			t.Fatalf("%s: the test did not change the file", name)
		}
		if _, err := decodeEntry([]byte(data)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
	if _, err := decodeEntry([]byte(good)); err != nil {
		t.Fatalf("good file: %v", err)
	}
}

func TestEncodeEntryRefusesIncompleteEntries(t *testing.T) {
	k := baseKey().Canonical()
	if _, err := encodeEntry(k, Entry{ExpiresOn: time.Now()}); err == nil {
		t.Error("encoded an entry without a token")
	}
	if _, err := encodeEntry(k, Entry{AccessToken: "t"}); err == nil {
		t.Error("encoded an entry without an expiry")
	}
}

func FuzzDecodeEntry(f *testing.F) {
	good := validFile(f)
	f.Add(good)
	f.Add(good[:len(good)-10])
	f.Add([]byte{})
	f.Add([]byte("null"))
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":2,"key":{},"access_token":"x","expires_on":1}`))
	f.Add([]byte(`{"v":1,"key":{"scopes":["B","a"]},"access_token":"x","expires_on":1}`))
	f.Add([]byte(`{"v":1,"key":{},"access_token":"x","expires_on":9223372036854775807}`))
	f.Add(bytes.Repeat([]byte{0}, 64))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decodeEntry(data)
		if err != nil {
			return
		}
		// Whatever decodes is a complete entry under a canonical key, and
		// survives being written back unchanged.
		if e.AccessToken == "" || e.ExpiresOn.Unix() <= 0 {
			t.Fatalf("decoded an incomplete entry: %+v", e)
		}
		if !e.Key.equal(e.Key.Canonical()) {
			t.Fatalf("decoded a non-canonical key: %+v", e.Key)
		}
		again, err := encodeEntry(e.Key, e)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		e2, err := decodeEntry(again)
		if err != nil {
			t.Fatalf("decode of re-encoded entry: %v", err)
		}
		if !reflect.DeepEqual(normalise(e), normalise(e2)) {
			t.Fatalf("round trip changed the entry:\n%+v\n%+v", e, e2)
		}
	})
}

// normalise makes nil and empty slices alike, which JSON does not tell apart.
func normalise(e Entry) Entry {
	if len(e.Scopes) == 0 {
		e.Scopes = nil
	}
	if len(e.Key.Scopes) == 0 {
		e.Key.Scopes = nil
	}
	return e
}
