package token

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/pctoken/pctoken-helper/securestore"
)

// ctxStore is a store that takes contexts and decides its own writes, as the Key Vault
// store does: it records what the chain asked of it.
type ctxStore struct {
	mu        sync.Mutex
	value     string
	gets      int
	saves     []string
	required  []bool
	saveError error
}

func (s *ctxStore) Get(string) (string, error) {
	return "", errors.New("the chain must use GetContext")
}
func (s *ctxStore) Set(string, string) error { return errors.New("the chain must use SaveRotated") }
func (s *ctxStore) Remove(string) error      { return nil }

func (s *ctxStore) GetContext(ctx context.Context, key string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets++
	return s.value, nil
}

func (s *ctxStore) SaveRotated(ctx context.Context, key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saves = append(s.saves, value)
	s.required = append(s.required, securestore.WriteRequired(ctx))
	return s.saveError
}

func TestContextStoreIsUsedWithTheRequestsContext(t *testing.T) {
	st := &ctxStore{value: "rt-0"}
	h := &RefreshToken{Store: st, Key: "rt", Profile: "p"}
	ctx := securestore.WithWriteRequired(context.Background())
	if v, err := h.GetContext(ctx); err != nil || v != "rt-0" {
		t.Fatalf("GetContext = %q, %v", v, err)
	}
	if err := h.RotateContext(ctx, "rt-1"); err != nil {
		t.Fatal(err)
	}
	if len(st.saves) != 1 || st.saves[0] != "rt-1" || !st.required[0] {
		t.Fatalf("saves %v, write required %v", st.saves, st.required)
	}
}

// Reload reads the store again after a refusal, and says whether that helps.
func TestReloadAfterARefusal(t *testing.T) {
	st := &ctxStore{value: "rt-0"}
	h := &RefreshToken{Store: st, Key: "rt", Profile: "p"}
	rt, _ := h.GetContext(context.Background())
	if _, ok := h.Reload(context.Background(), rt); ok {
		t.Fatal("the same token again counts as a new one")
	}
	st.value = "rt-consented-again" // another machine consented again
	if v, ok := h.Reload(context.Background(), rt); !ok || v != "rt-consented-again" {
		t.Fatalf("Reload = %q, %v", v, ok)
	}
	if st.gets != 3 {
		t.Fatalf("%d reads", st.gets)
	}
	// A rotation of this process arrived meanwhile: that one, no read.
	if err := h.Rotate("rt-rotated"); err != nil {
		t.Fatal(err)
	}
	if v, ok := h.Reload(context.Background(), "rt-consented-again"); !ok || v != "rt-rotated" || st.gets != 3 {
		t.Fatalf("Reload = %q, %v after %d reads", v, ok, st.gets)
	}
}
