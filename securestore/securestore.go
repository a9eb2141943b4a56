// Package securestore keeps refresh tokens and client secrets in the OS
// keyring or an encrypted file, and in CI mode hands out the refresh token
// given in the environment.
//
// Backends, by the names users give in --store or PCTOKEN_STORE:
//
//   - secret-service: the freedesktop Secret Service (gnome-keyring, KeePassXC),
//     spoken directly over D-Bus with go-libsecret's types. It connects on the
//     first Get, Set or Remove, and only to a bus that exists
//     (DBUS_SESSION_BUS_ADDRESS, or $XDG_RUNTIME_DIR/bus): it never autolaunches
//     one. Items go into an existing collection ("login" by default), labelled
//     "<service>: <key>" with the attributes service=<service> and key=<key>.
//     A locked collection is reported, never unlocked with a prompt.
//   - keychain, wincred, kwallet, pass: 99designs/keyring's backends.
//     keychain needs a build with cgo; kwallet is only there when it was asked
//     for before the program started (see package busguard).
//   - file: keyring's file backend (one JWE per key, PBES2 with a passphrase),
//     with atomic writes added. The passphrase is PCTOKEN_FILE_PASSPHRASE, or is
//     asked on the terminal (/dev/tty, never stdout) on the first Get or Set
//     that needs it, once per Store.
//   - auto: the keychain on macOS, wincred on Windows, the Secret Service on
//     Linux when a session bus is there and the collection exists and is
//     unlocked; otherwise file.
//
// Importing this package installs busguard, so that keyring's init does not
// dial the session bus; this package's init puts DBUS_SESSION_BUS_ADDRESS back
// before main runs.
package securestore

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"

	"github.com/99designs/keyring"

	"github.com/pctoken/pctoken-helper/securestore/busguard"
)

func init() {
	// keyring's init, which busguard kept off the bus, has run by now: this
	// package imports keyring, so it is initialised after it.
	busguard.Restore()
}

// Errors that callers map to exit codes and hints. Errors from this package
// never contain a secret.
var (
	// ErrNotFound is returned by Get when the key is not in the store.
	ErrNotFound = errors.New("not found in the secure store")
	// ErrNoPassphrase: the file store needs a passphrase and may not, or
	// cannot, ask for one.
	ErrNoPassphrase = errors.New("the file store needs a passphrase: set PCTOKEN_FILE_PASSPHRASE")
	// ErrWrongPassphrase: an entry of the file store does not decrypt.
	ErrWrongPassphrase = errors.New("cannot decrypt the file store: wrong passphrase?")
	// ErrUnknownBackend: the store name is none of Backends.
	ErrUnknownBackend = errors.New("unknown store")
	// ErrUnavailable: the store exists but cannot be used on this machine, in
	// this build or in this process.
	ErrUnavailable = errors.New("the secure store is not available")
	// ErrLocked: the Secret Service collection is locked.
	ErrLocked = errors.New("the secure store is locked")
)

// Backends lists the store names Open accepts.
var Backends = []string{"auto", "secret-service", "keychain", "wincred", "kwallet", "pass", "file"}

// Store keeps secrets under string keys. Implementations are safe for
// concurrent use.
type Store interface {
	// Get returns the value stored under key, or ErrNotFound.
	Get(key string) (string, error)
	// Set stores value under key, replacing any older value.
	Set(key, value string) error
	// Remove deletes key; a key that is absent is not an error.
	Remove(key string) error
}

// Config chooses and sets up the store.
type Config struct {
	// Backend is one of Backends; "" means "auto".
	Backend string
	// FileDir is the folder of the file store, created 0700 when first used.
	FileDir string
	// Collection is the Secret Service collection: a name ("login" when
	// empty, never a new one) or an object path such as
	// /org/freedesktop/secrets/aliases/default.
	Collection string
	// Passphrase of the file store (PCTOKEN_FILE_PASSPHRASE); when empty it is
	// asked on the terminal if Prompt allows.
	Passphrase string
	// Prompt tells whether asking on the terminal is allowed; false for
	// non-interactive runs (kubectl without a terminal, CI).
	Prompt bool
	// TTY opens the terminal for the passphrase prompt; nil opens /dev/tty
	// (the console on Windows).
	TTY func() (io.ReadWriteCloser, error)
	// ServiceName names this program in the keyring; "pctoken-helper" when
	// empty.
	ServiceName string
}

func (cfg Config) withDefaults() Config {
	if cfg.Backend == "" {
		cfg.Backend = "auto"
	}
	if cfg.Collection == "" {
		cfg.Collection = "login"
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = "pctoken-helper"
	}
	if cfg.TTY == nil {
		cfg.TTY = openTTY
	}
	return cfg
}

// Open returns the store cfg asks for and the name of the backend used, which
// for "auto" is the one it resolved to. Opening never prompts; the file
// store's passphrase is asked on first use.
func Open(cfg Config) (Store, string, error) {
	cfg = cfg.withDefaults()
	var s Store
	var err error
	switch cfg.Backend {
	case "auto":
		return openAuto(cfg)
	case "file":
		s, err = openFile(cfg)
	case "secret-service":
		s, err = openSecretService(cfg)
	case "keychain", "wincred", "kwallet", "pass":
		s, err = openKeyring(cfg, keyring.BackendType(cfg.Backend))
	default:
		err = fmt.Errorf("%w %q: valid stores are %s", ErrUnknownBackend, cfg.Backend, strings.Join(Backends, ", "))
	}
	if err != nil {
		return nil, "", err
	}
	return s, cfg.Backend, nil
}

func openAuto(cfg Config) (Store, string, error) {
	var native keyring.BackendType
	switch runtime.GOOS {
	case "darwin":
		native = keyring.KeychainBackend
	case "windows":
		native = keyring.WinCredBackend
	case "linux":
		if s, ok := probeSecretService(cfg); ok {
			return s, "secret-service", nil
		}
	}
	name := "file"
	if native != "" && slices.Contains(keyring.AvailableBackends(), native) {
		name = string(native)
	}
	cfg.Backend = name
	return Open(cfg)
}
