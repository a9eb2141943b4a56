package securestore

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/99designs/keyring"

	"github.com/pctoken/pctoken-helper/internal/safefs"
	"github.com/pctoken/pctoken-helper/redact"
)

const (
	// tempPrefix starts the names of files being written. Entry names never
	// start with a dot (see fileName), so the two cannot meet.
	tempPrefix = ".tmp-"
	// staleTemp is the age after which a temporary file is taken for the
	// leftover of a killed writer; a write takes milliseconds.
	staleTemp = time.Minute
)

// fileStore is keyring's file backend, one JWE file per key, with what it
// lacks for a refresh token that must survive: writes are atomic (keyring
// writes in place, so a writer killed midway would leave a torn file), the
// passphrase is asked on the terminal rather than stdout, and a passphrase
// that does not open the existing entries is refused before it writes a new
// one.
type fileStore struct {
	dir  string
	cfg  Config
	ring keyring.Keyring

	// mu serialises the operations; keyring's file backend keeps the
	// passphrase in an unguarded field.
	mu       sync.Mutex
	dirReady bool
	asked    bool
	pass     string
	passErr  error
	// verified is set once the passphrase has decrypted an entry, or has
	// created the store.
	verified bool
}

func openFile(cfg Config) (Store, error) {
	if cfg.FileDir == "" {
		return nil, errors.New("the file store needs a folder: set --store-dir or PCTOKEN_STORE_DIR")
	}
	dir, err := keyring.ExpandTilde(cfg.FileDir)
	if err != nil {
		return nil, fmt.Errorf("cannot find the file store folder: %w", err)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("cannot find the file store folder: %w", err)
	}
	s := &fileStore{dir: dir, cfg: cfg}
	s.ring, err = keyring.Open(keyring.Config{
		AllowedBackends:  []keyring.BackendType{keyring.FileBackend},
		FileDir:          dir,
		FilePasswordFunc: s.passphrase,
	})
	if err != nil {
		return nil, fmt.Errorf("cannot open the file store: %w", err)
	}
	return s, nil
}

// fileName maps a key to its file's name: letters, digits, '-' and '.' are
// kept, every other byte (and a leading '.') becomes "_XX". The name is then
// safe on every file system, and keyring's own escaping (it encodes only '/'
// and '%', file.go filenameEscape) leaves it unchanged, so Set knows which
// file keyring wrote and can rename its temporary file over the entry.
func fileName(key string) (string, error) {
	if key == "" {
		return "", errors.New("empty key")
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.' && i > 0:
			b.WriteByte(c)
		default:
			b.WriteByte('_')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String(), nil
}

func (s *fileStore) Get(key string) (string, error) {
	name, err := fileName(key)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.prepareDir(); err != nil {
		return "", err
	}
	item, err := s.read(name)
	if err != nil {
		return "", s.explain(err, fmt.Sprintf("cannot read %q from the file store", key))
	}
	s.verified = true
	redact.Register(string(item.Data))
	return string(item.Data), nil
}

func (s *fileStore) Set(key, value string) error {
	redact.Register(value)
	name, err := fileName(key)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.prepareDir(); err != nil {
		return err
	}
	if err := s.verify(name); err != nil {
		return err
	}
	tmp := tempPrefix + rand.Text()
	if err := s.ring.Set(keyring.Item{Key: tmp, Data: []byte(value)}); err != nil {
		os.Remove(filepath.Join(s.dir, tmp))
		if s.passErr != nil {
			return s.passErr
		}
		return fmt.Errorf("cannot save %q in the file store: %w", key, err)
	}
	if err := s.commit(tmp, name); err != nil {
		os.Remove(filepath.Join(s.dir, tmp))
		return fmt.Errorf("cannot save %q in the file store: %w", key, err)
	}
	s.verified = true
	s.removeStaleTemps()
	return nil
}

func (s *fileStore) Remove(key string) error {
	name, err := fileName(key)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// keyring returns os.Remove's error as is, "file not found" included.
	if err := s.ring.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot remove %q from the file store: %w", key, err)
	}
	return nil
}

// errDamaged: an entry file is not a JWE that keyring can parse.
var errDamaged = errors.New("the file store entry is damaged")

// read is keyring's Get, made safe against damaged files: jose2go panics on
// some malformed JWEs (found by FuzzFileGet).
func (s *fileStore) read(name string) (item keyring.Item, err error) {
	defer func() {
		if recover() != nil {
			err = errDamaged
		}
	}()
	if err := checkIterations(filepath.Join(s.dir, name)); err != nil {
		return keyring.Item{}, err
	}
	return s.ring.Get(name)
}

// maxIterations bounds the PBKDF2 work an entry may ask for. keyring writes 8192;
// the count is read from the entry itself, so without a bound a planted entry could
// make one read outlast any --timeout.
const maxIterations = 8 * 8192

// checkIterations refuses an entry whose JWE header asks for more PBKDF2 iterations
// than keyring ever writes. A missing file is left to keyring to report.
func checkIterations(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	head := make([]byte, 4096)
	n, _ := io.ReadFull(f, head)
	protected, _, _ := strings.Cut(string(head[:n]), ".")
	raw, err := base64.RawURLEncoding.DecodeString(protected)
	if err != nil {
		return errDamaged
	}
	var h struct {
		P2C int64 `json:"p2c"`
	}
	if json.Unmarshal(raw, &h) != nil || h.P2C < 0 || h.P2C > maxIterations {
		return errDamaged
	}
	return nil
}

// explain turns an error of keyring's file backend Get into one of ours.
// Besides file errors and the passphrase function's error, what it returns
// comes from decoding the JWE, which with a sound file means the passphrase is
// not the one it was written with.
func (s *fileStore) explain(err error, context string) error {
	if errors.Is(err, keyring.ErrKeyNotFound) {
		return ErrNotFound
	}
	if s.passErr != nil {
		return s.passErr
	}
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) || errors.Is(err, errDamaged) {
		return fmt.Errorf("%s: %w", context, err)
	}
	return ErrWrongPassphrase
}

// verify checks, before the first write, that the passphrase opens an entry
// already there (the one about to be replaced first), so that a mistyped
// passphrase cannot leave a store whose entries need different ones. Damaged
// entries prove nothing either way and are passed over.
func (s *fileStore) verify(name string) error {
	if s.verified {
		return nil
	}
	entries, err := s.entries()
	if err != nil {
		return fmt.Errorf("cannot read the file store: %w", err)
	}
	if i := slices.Index(entries, name); i > 0 {
		entries[0], entries[i] = entries[i], entries[0]
	}
	var refused error
	for _, e := range entries {
		_, err := s.read(e)
		if err == nil {
			s.verified = true
			return nil
		}
		if errors.Is(err, keyring.ErrKeyNotFound) || errors.Is(err, errDamaged) {
			continue
		}
		if refused = s.explain(err, "cannot check the passphrase on the file store"); !errors.Is(refused, ErrWrongPassphrase) {
			return refused
		}
	}
	return refused
}

// commit makes the temporary file the entry. The data is flushed before the
// rename, so that after a crash the entry is the old file or the complete new
// one.
func (s *fileStore) commit(tmp, name string) error {
	tmpPath := filepath.Join(s.dir, tmp)
	f, err := os.OpenFile(tmpPath, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmpPath, filepath.Join(s.dir, name)); err != nil {
		return err
	}
	if runtime.GOOS != "windows" {
		// Best effort: also persist the rename itself.
		if d, err := os.Open(s.dir); err == nil {
			d.Sync()
			d.Close()
		}
	}
	return nil
}

// entries lists the names of the entry files, temporary files left out.
func (s *fileStore) entries() ([]string, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, de := range des {
		if !strings.HasPrefix(de.Name(), ".") && de.Type().IsRegular() {
			names = append(names, de.Name())
		}
	}
	return names, nil
}

// removeStaleTemps deletes what writers killed midway left behind: each is a
// complete or partial copy of a secret, encrypted.
func (s *fileStore) removeStaleTemps() {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, de := range des {
		if !strings.HasPrefix(de.Name(), tempPrefix) {
			continue
		}
		if info, err := de.Info(); err == nil && time.Since(info.ModTime()) > staleTemp {
			os.Remove(filepath.Join(s.dir, de.Name()))
		}
	}
}

// prepareDir creates the folder 0700, and refuses one that others can write
// to: they could delete or swap the entries.
func (s *fileStore) prepareDir() error {
	if s.dirReady {
		return nil
	}
	// The rules of every folder of the helper's (package safefs): the user's own,
	// writable by no one else, and in no folder that lets another user swap it.
	if _, err := safefs.EnsureDir(s.dir); err != nil {
		var unsafe *safefs.UnsafeError
		if errors.As(err, &unsafe) {
			return fmt.Errorf("refusing the file store folder: %w", err)
		}
		return fmt.Errorf("cannot use the file store folder: %w", err)
	}
	s.dirReady = true
	return nil
}

// passphrase is keyring's FilePasswordFunc. keyring calls it while s.mu is
// held, on the first operation that needs to encrypt or decrypt; the outcome,
// failure included, stands for the life of the store, so the user is asked at
// most once.
func (s *fileStore) passphrase(string) (string, error) {
	if !s.asked {
		s.asked = true
		s.pass, s.passErr = s.obtainPassphrase()
	}
	return s.pass, s.passErr
}

func (s *fileStore) obtainPassphrase() (string, error) {
	if s.cfg.Passphrase != "" {
		redact.Register(s.cfg.Passphrase)
		return s.cfg.Passphrase, nil
	}
	if !s.cfg.Prompt {
		return "", ErrNoPassphrase
	}
	tty, err := s.cfg.TTY()
	if err != nil {
		return "", fmt.Errorf("%w (there is no terminal to ask on)", ErrNoPassphrase)
	}
	defer tty.Close()
	entries, err := s.entries()
	if err != nil {
		return "", fmt.Errorf("cannot read the file store: %w", err)
	}
	pass, err := ask(tty, fmt.Sprintf("Passphrase of the pctoken-helper file store in %s: ", s.dir))
	if err != nil {
		return "", fmt.Errorf("cannot read the passphrase: %w", err)
	}
	if pass == "" {
		return "", fmt.Errorf("%w (an empty one was typed)", ErrNoPassphrase)
	}
	if len(entries) == 0 {
		// A new store: a typo now would lock the secret away.
		again, err := ask(tty, "Repeat it to create the store: ")
		if err != nil {
			return "", fmt.Errorf("cannot read the passphrase: %w", err)
		}
		if again != pass {
			return "", errors.New("the two passphrases typed differ")
		}
	}
	redact.Register(pass)
	return pass, nil
}
