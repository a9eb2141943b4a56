package token

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/cache"
	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/securestore"
)

// countingSource is the "fetching" end of the chain: it mints a token per call.
type countingSource struct {
	calls atomic.Int32
	err   error
	life  time.Duration
	now   func() time.Time
}

func (s *countingSource) Token(ctx context.Context, r Request) (Token, error) {
	n := s.calls.Add(1)
	if s.err != nil {
		return Token{}, s.err
	}
	return Token{AccessToken: fmt.Sprintf("token-%d", n), ExpiresOn: s.now().Add(s.life), TenantID: r.Tenant, Scopes: r.Scopes}, nil
}

func newChain(t *testing.T, now *time.Time) (*Cached, *countingSource) {
	t.Helper()
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return *now }
	src := &countingSource{life: time.Hour, now: clock}
	return &Cached{Cache: c, Next: src, Now: clock}, src
}

func request() Request {
	return Request{Profile: "p", ClientID: "c", Authority: "https://login.example", Tenant: "t", Scopes: []string{"s/.default"}, MinValidity: 5 * time.Minute}
}

func TestCachedServesUntilMinValidity(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	chain, src := newChain(t, &now)
	first, err := chain.Token(context.Background(), request())
	if err != nil || first.Cached {
		t.Fatalf("first: %+v %v", first, err)
	}
	now = now.Add(55 * time.Minute) // exactly 5 minutes left: still fresh
	hit, _ := chain.Token(context.Background(), request())
	if !hit.Cached || hit.AccessToken != first.AccessToken || src.calls.Load() != 1 {
		t.Fatalf("at the margin: %+v, %d calls", hit, src.calls.Load())
	}
	now = now.Add(time.Second)
	fresh, _ := chain.Token(context.Background(), request())
	if fresh.Cached || fresh.AccessToken == first.AccessToken || src.calls.Load() != 2 {
		t.Fatalf("past the margin: %+v", fresh)
	}
	r := request()
	r.ForceRefresh = true
	if forced, _ := chain.Token(context.Background(), r); forced.Cached || src.calls.Load() != 3 {
		t.Fatalf("force refresh: %+v", forced)
	}
}

func TestTransientFailureFallsBackToAValidCachedToken(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	chain, src := newChain(t, &now)
	var warned string
	chain.Warn = func(f string, a ...any) { warned = fmt.Sprintf(f, a...) }
	first, _ := chain.Token(context.Background(), request())
	now = now.Add(58 * time.Minute) // 2 minutes left: stale, but valid
	src.err = &failure.Error{Kind: failure.Transient, Message: "503"}
	got, err := chain.Token(context.Background(), request())
	if err != nil || got.AccessToken != first.AccessToken || warned == "" {
		t.Fatalf("fallback: %+v %v, warning %q", got, err, warned)
	}
	forced := request()
	forced.ForceRefresh = true // renew and --force-refresh must report the failed redemption
	if got, err := chain.Token(context.Background(), forced); failure.KindOf(err) != failure.Transient {
		t.Fatalf("force refresh fell back to the cached token: %+v %v", got, err)
	}
	src.err = &failure.Error{Kind: failure.ConsentNeeded, Message: "expired"}
	if _, err := chain.Token(context.Background(), request()); failure.KindOf(err) != failure.ConsentNeeded {
		t.Fatalf("consent errors must not fall back: %v", err)
	}
	now = now.Add(3 * time.Minute) // expired: nothing to fall back to
	src.err = &failure.Error{Kind: failure.Transient, Message: "503"}
	if _, err := chain.Token(context.Background(), request()); failure.KindOf(err) != failure.Transient {
		t.Fatalf("expired token returned on failure: %v", err)
	}
}

func TestConcurrentMissesRefreshOnce(t *testing.T) {
	now := time.Now()
	chain, src := newChain(t, &now)
	var wg sync.WaitGroup
	tokens := make(chan string, 32)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := chain.Token(context.Background(), request())
			if err != nil {
				t.Error(err)
			}
			tokens <- tok.AccessToken
		}()
	}
	wg.Wait()
	close(tokens)
	for tok := range tokens {
		if tok != "token-1" {
			t.Fatalf("got %q", tok)
		}
	}
	if n := src.calls.Load(); n != 1 {
		t.Fatalf("%d refreshes for one key", n)
	}
}

// memStore counts writes; it stands in for the keyring, an edge of the OS.
type memStore struct {
	mu     sync.Mutex
	values map[string]string
	sets   int
	slow   time.Duration
}

func (m *memStore) Get(k string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.values[k]
	if !ok {
		return "", securestore.ErrNotFound
	}
	return v, nil
}

func (m *memStore) Set(k, v string) error {
	time.Sleep(m.slow)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.values[k] = v
	m.sets++
	return nil
}

func (m *memStore) Remove(k string) error { return nil }

func TestRotationsCoalesceAndTheNewestIsSaved(t *testing.T) {
	st := &memStore{values: map[string]string{"rt": "rt-0"}, slow: 20 * time.Millisecond}
	h := &RefreshToken{Store: st, Key: "rt", Profile: "p"}
	if v, err := h.Get(); err != nil || v != "rt-0" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	var wg sync.WaitGroup
	for i := 1; i <= 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.Rotate(fmt.Sprintf("rt-%d", i)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	cur, _ := h.Get()
	saved, _ := st.Get("rt")
	if saved != cur {
		t.Fatalf("saved %q, current %q", saved, cur)
	}
	if st.sets >= 50 {
		t.Fatalf("%d store writes for 100 rotations: saves do not coalesce", st.sets)
	}
}

func TestMissingRefreshTokenMeansConsent(t *testing.T) {
	h := &RefreshToken{Store: &memStore{values: map[string]string{}}, Key: "rt", Profile: "contoso"}
	_, err := h.Get()
	var e *failure.Error
	if !errors.As(err, &e) || e.Kind != failure.ConsentNeeded {
		t.Fatalf("Get of a missing token: %v", err)
	}
}

// failingStore cannot be read, as a file store without its passphrase.
type failingStore struct{}

func (failingStore) Get(string) (string, error) { return "", securestore.ErrNoPassphrase }
func (failingStore) Set(string, string) error   { return securestore.ErrNoPassphrase }
func (failingStore) Remove(string) error        { return nil }

func TestUnreadableStoreIsConfiguration(t *testing.T) {
	h := &RefreshToken{Store: failingStore{}, Key: "rt", Profile: "contoso"}
	_, err := h.Get()
	if failure.KindOf(err) != failure.Configuration || !errors.Is(err, securestore.ErrNoPassphrase) {
		t.Fatalf("Get from an unreadable store: %v (kind %v)", err, failure.KindOf(err))
	}
}

// A tenant asked for by domain is cached under its tenant id too: the same token asked
// for by id is a hit, and a request by id stores one entry only.
func TestTenantByDomainIsAlsoCachedByID(t *testing.T) {
	const tid = "0f1e2d3c-0000-4000-8000-00000000fab1"
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	chain, src := newChain(t, &now)
	chain.Next = tenantSource{src, tid}
	byName := request()
	byName.Tenant = "Fabrikam.onmicrosoft.com"
	first, err := chain.Token(context.Background(), byName)
	if err != nil || first.Cached {
		t.Fatalf("by name: %+v %v", first, err)
	}
	byID := request()
	byID.Tenant = strings.ToUpper(tid)
	hit, err := chain.Token(context.Background(), byID)
	if err != nil || !hit.Cached || hit.AccessToken != first.AccessToken || src.calls.Load() != 1 {
		t.Fatalf("by id after by name: %+v %v, %d redemptions", hit, err, src.calls.Load())
	}
	entries, err := chain.Cache.List()
	if err != nil || len(entries) != 2 || entries[0].Key.Tenant != tid || entries[1].Key.Tenant != "fabrikam.onmicrosoft.com" {
		t.Fatalf("entries %+v %v", entries, err)
	}
	if found, err := chain.Cache.DeleteToken(first.AccessToken); !found || err != nil {
		t.Fatalf("erase: %v %v", found, err)
	}
	if entries, _ := chain.Cache.List(); len(entries) != 0 {
		t.Fatalf("erase left %d entries", len(entries))
	}

	// Asked for by id first: one entry, nothing stored under a name.
	if _, err := chain.Token(context.Background(), byID); err != nil {
		t.Fatal(err)
	}
	if entries, _ := chain.Cache.List(); len(entries) != 1 {
		t.Fatalf("by id: %d entries, want 1", len(entries))
	}
}

// tenantSource answers as Entra does for a tenant asked for by name: the token names
// the tenant's id.
type tenantSource struct {
	*countingSource
	tid string
}

func (s tenantSource) Token(ctx context.Context, r Request) (Token, error) {
	t, err := s.countingSource.Token(ctx, r)
	t.TenantID = s.tid
	return t, err
}
