package securestore

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"

	"github.com/99designs/keyring"

	"github.com/pctoken/pctoken-helper/redact"
)

// keyringStore is a Store on one of 99designs/keyring's OS backends. The
// backend is opened on first use: opening kwallet opens the wallet, which may
// show a prompt.
type keyringStore struct {
	backend keyring.BackendType
	cfg     keyring.Config

	mu   sync.Mutex
	ring keyring.Keyring
}

func openKeyring(cfg Config, backend keyring.BackendType) (Store, error) {
	if !slices.Contains(keyring.AvailableBackends(), backend) {
		return nil, fmt.Errorf("%w: %s", ErrUnavailable, unavailableReason(backend))
	}
	return &keyringStore{
		backend: backend,
		cfg: keyring.Config{
			AllowedBackends: []keyring.BackendType{backend},
			ServiceName:     cfg.ServiceName,
			// Trusting the application spares a macOS access dialog on
			// every read by the binary that wrote the item.
			KeychainTrustApplication: true,
			KeychainPasswordFunc:     terminalPrompt(cfg),
			KWalletAppID:             cfg.ServiceName,
			KWalletFolder:            cfg.ServiceName,
			PassPrefix:               cfg.ServiceName,
			WinCredPrefix:            cfg.ServiceName,
		},
	}, nil
}

func unavailableReason(backend keyring.BackendType) string {
	switch backend {
	case keyring.KWalletBackend:
		return "kwallet is only reachable when PCTOKEN_STORE=kwallet (or --store kwallet) is given when the helper starts, on Linux with a D-Bus session bus running; set PCTOKEN_STORE=kwallet"
	case keyring.KeychainBackend:
		return "keychain needs macOS and a build with cgo; use --store file"
	case keyring.WinCredBackend:
		return "wincred needs Windows; use --store file"
	}
	return fmt.Sprintf("%s is not supported on this platform; use --store file", backend)
}

func (s *keyringStore) open() (keyring.Keyring, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ring != nil {
		return s.ring, nil
	}
	ring, err := keyring.Open(s.cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot open the %s store: %w", s.backend, err)
	}
	s.ring = ring
	return ring, nil
}

func (s *keyringStore) Get(key string) (string, error) {
	ring, err := s.open()
	if err != nil {
		return "", err
	}
	item, err := ring.Get(key)
	if errors.Is(err, keyring.ErrKeyNotFound) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("cannot read %q from the %s store: %w", key, s.backend, err)
	}
	redact.Register(string(item.Data))
	return string(item.Data), nil
}

func (s *keyringStore) Set(key, value string) error {
	redact.Register(value)
	ring, err := s.open()
	if err != nil {
		return err
	}
	item := keyring.Item{Key: key, Data: []byte(value), Label: s.cfg.ServiceName + ": " + key}
	if err := ring.Set(item); err != nil {
		return fmt.Errorf("cannot save %q in the %s store: %w", key, s.backend, err)
	}
	return nil
}

func (s *keyringStore) Remove(key string) error {
	ring, err := s.open()
	if err != nil {
		return err
	}
	err = ring.Remove(key)
	if err == nil || errors.Is(err, keyring.ErrKeyNotFound) || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return fmt.Errorf("cannot remove %q from the %s store: %w", key, s.backend, err)
}
