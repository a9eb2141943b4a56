package token

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/securestore"
)

// RefreshToken is one profile's refresh token as a process sees it: read from the
// secure store once, then replaced by each rotation. Redemptions running at the same
// time (a --request batch) share it, and their saves coalesce: one Rotate at a time
// writes, always the newest token, and goes on writing while rotations keep coming,
// at most one write per savePause; the others return at once. So a batch of a
// thousand tenants costs a handful of keyring writes instead of a thousand, and no
// request waits for a write another's rotation caused. Every token Entra hands out
// stays valid until it expires unused or is revoked, so whichever rotation is saved
// last is a good one.
type RefreshToken struct {
	Store   securestore.Store
	Key     string
	Profile string
	// Saved is called after a rotated token reached the store (e.g. to record when).
	Saved func() error

	mu       sync.Mutex
	value    string
	loaded   bool
	gen      int // bumped by each rotation
	savedGen int
	saving   bool // a Rotate is writing, and writes the newest token before it returns
}

// savePause is how long the writing Rotate waits between two writes while rotations
// keep coming. Each write of the file store costs a key derivation and two fsyncs;
// when every rotation waited for its own write, a batch spent most of its time there
// (docs/performance.md, bar 5).
const savePause = 250 * time.Millisecond

// contextStore is a store whose calls take the request's context, and that decides
// itself whether a rotated token needs writing (the Key Vault store, shared by a fleet).
type contextStore interface {
	GetContext(ctx context.Context, key string) (string, error)
	SaveRotated(ctx context.Context, key, value string) error
}

// Get returns the current refresh token; ErrNotFound in the store means consent is needed.
func (h *RefreshToken) Get() (string, error) { return h.GetContext(context.Background()) }

// GetContext is Get within ctx.
func (h *RefreshToken) GetContext(ctx context.Context) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.loaded {
		return h.value, nil
	}
	return h.load(ctx)
}

// load reads the store; the caller holds h.mu.
func (h *RefreshToken) load(ctx context.Context) (string, error) {
	var v string
	var err error
	if cs, ok := h.Store.(contextStore); ok {
		v, err = cs.GetContext(ctx, h.Key)
	} else {
		v, err = h.Store.Get(h.Key)
	}
	if errors.Is(err, securestore.ErrNotFound) || (err == nil && v == "") {
		return "", &failure.Error{Kind: failure.ConsentNeeded, Message: "no refresh token is stored for profile " + h.Profile, Err: err}
	}
	if err != nil {
		// No passphrase, a wrong one, a locked keyring: the user's setup, not a bug.
		return "", failure.Wrap(failure.Configuration, err)
	}
	h.value, h.loaded = v, true
	return v, nil
}

// Reload reads the store again after the identity provider refused redeemed, and
// reports whether it now holds another token: a store shared by several machines
// (Key Vault) may have received a new consent meanwhile, which heals this one.
func (h *RefreshToken) Reload(ctx context.Context, redeemed string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.value != redeemed {
		return h.value, h.value != "" // a rotation of this process came in meanwhile
	}
	v, err := h.load(ctx)
	if err != nil || v == redeemed {
		return "", false
	}
	return v, true
}

// Rotate makes rt the current refresh token and sees that it is saved. If no other
// Rotate is writing, this one writes, and returns the outcome of its writes: it goes
// on until the newest token is saved, pausing between writes while rotations keep
// coming. If another is writing, Rotate returns nil at once: that one writes rt, or a
// newer token, before it returns.
func (h *RefreshToken) Rotate(rt string) error { return h.RotateContext(context.Background(), rt) }

// RotateContext is Rotate within ctx.
func (h *RefreshToken) RotateContext(ctx context.Context, rt string) error {
	h.mu.Lock()
	h.value, h.loaded = rt, true
	h.gen++
	if h.saving {
		h.mu.Unlock()
		return nil
	}
	h.saving = true
	h.mu.Unlock()
	return h.save(ctx)
}

// save writes the newest token until no rotation is left unsaved; Saved is called
// once, after the last write.
func (h *RefreshToken) save(ctx context.Context) error {
	wrote := false
	for {
		h.mu.Lock()
		if h.savedGen == h.gen {
			h.saving = false
			h.mu.Unlock()
			if wrote && h.Saved != nil {
				return h.Saved()
			}
			return nil
		}
		v, gen := h.value, h.gen
		h.mu.Unlock()

		var err error
		if cs, ok := h.Store.(contextStore); ok {
			err = cs.SaveRotated(ctx, h.Key, v)
		} else {
			err = h.Store.Set(h.Key, v)
		}
		if err != nil {
			h.mu.Lock()
			h.saving = false
			h.mu.Unlock()
			return err
		}
		wrote = true
		h.mu.Lock()
		h.savedGen = gen
		more := h.gen != gen
		h.mu.Unlock()
		if more {
			time.Sleep(savePause) // let the rest of the batch's rotations gather
		}
	}
}
