package token

import (
	"errors"
	"sync"

	"github.com/pctoken/pctoken-helper/entra"
	"github.com/pctoken/pctoken-helper/securestore"
)

// RefreshToken is one profile's refresh token as a process sees it: read from the
// secure store once, then replaced by each rotation. Redemptions running at the same
// time (a --request batch) share it, and their saves coalesce: one write at a time,
// always of the newest token, so a batch of a thousand tenants costs a handful of
// keyring writes instead of a thousand. Every token Entra hands out stays valid until
// it expires unused or is revoked, so whichever rotation is saved last is a good one.
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

	saveMu sync.Mutex // one store write at a time
}

// Get returns the current refresh token; ErrNotFound in the store means consent is needed.
func (h *RefreshToken) Get() (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.loaded {
		return h.value, nil
	}
	v, err := h.Store.Get(h.Key)
	if errors.Is(err, securestore.ErrNotFound) || (err == nil && v == "") {
		return "", &entra.Error{Kind: entra.ConsentNeeded, Message: "no refresh token is stored for profile " + h.Profile, Err: err}
	}
	if err != nil {
		// No passphrase, a wrong one, a locked keyring: the user's setup, not a bug.
		return "", &entra.Error{Kind: entra.Configuration, Message: err.Error(), Err: err}
	}
	h.value, h.loaded = v, true
	return v, nil
}

// Rotate makes rt the current refresh token and saves it.
func (h *RefreshToken) Rotate(rt string) error {
	h.mu.Lock()
	h.value, h.loaded = rt, true
	h.gen++
	h.mu.Unlock()
	return h.save()
}

func (h *RefreshToken) save() error {
	h.saveMu.Lock()
	defer h.saveMu.Unlock()
	h.mu.Lock()
	if h.savedGen == h.gen {
		h.mu.Unlock()
		return nil // a save that ran while this one waited already wrote the newest token
	}
	v, gen := h.value, h.gen
	h.mu.Unlock()

	if err := h.Store.Set(h.Key, v); err != nil {
		return err
	}
	h.mu.Lock()
	h.savedGen = gen
	h.mu.Unlock()
	if h.Saved != nil {
		return h.Saved()
	}
	return nil
}
