package securestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus"
	libsecret "github.com/gsterjov/go-libsecret"

	"github.com/pctoken/pctoken-helper/redact"
)

// busTimeout bounds each operation on the Secret Service, connecting
// included, so that a bus or service that accepts and never answers cannot
// hang the helper.
const busTimeout = 10 * time.Second

const (
	ifaceService    = "org.freedesktop.Secret.Service"
	ifaceCollection = "org.freedesktop.Secret.Collection"
	ifaceItem       = "org.freedesktop.Secret.Item"
	noPrompt        = dbus.ObjectPath("/")
)

var (
	errNoBus     = fmt.Errorf("%w: no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set and there is no $XDG_RUNTIME_DIR/bus); start one or use --store file", ErrUnavailable)
	errNoService = fmt.Errorf("%w: no Secret Service on the session bus (start gnome-keyring or KeePassXC) or use --store file", ErrUnavailable)
)

// secretService is a Store on the freedesktop Secret Service.
//
// It uses go-libsecret's wire types and names (Secret, Session, the service
// name and path) but makes the calls itself: go-libsecret's Service connects through dbus.SessionBus, which
// autolaunches a bus when there is none; its SearchItems and CreateItem fix
// the attributes to {"profile": label}; its property getters panic on an
// unexpected reply; and its prompts wait for ever. Here every call has a
// deadline and a prompt is an error, never shown.
type secretService struct {
	service    string
	collection string
	path       dbus.ObjectPath
	timeout    time.Duration

	mu      sync.Mutex
	conn    *dbus.Conn
	session *libsecret.Session
}

func openSecretService(cfg Config) (Store, error) {
	s, err := newSecretService(cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func newSecretService(cfg Config) (*secretService, error) {
	path, err := collectionPath(cfg.Collection)
	if err != nil {
		return nil, err
	}
	if _, ok := busAddress(); !ok {
		return nil, errNoBus
	}
	return &secretService{service: cfg.ServiceName, collection: cfg.Collection, path: path, timeout: busTimeout}, nil
}

// probeSecretService tells whether "auto" should use the Secret Service: a
// bus exists, the service answers, and the collection is there and unlocked.
// The probe's connection is kept for the store.
func probeSecretService(cfg Config) (Store, bool) {
	s, err := newSecretService(cfg)
	if err != nil {
		return nil, false
	}
	err = s.do(func(context.Context) error { return nil })
	if err != nil {
		s.close()
		return nil, false
	}
	return s, true
}

// busAddress returns the session bus address if a bus exists, without ever
// autolaunching one.
func busAddress() (string, bool) {
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" && !strings.HasPrefix(a, "autolaunch:") {
		return a, true
	}
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		p := filepath.Join(dir, "bus")
		if info, err := os.Stat(p); err == nil && info.Mode().Type() == fs.ModeSocket {
			return "unix:path=" + p, true
		}
	}
	return "", false
}

// collectionPath turns a collection name into its object path, encoding it
// as gnome-keyring does; a value that is already a path is taken as is.
func collectionPath(name string) (dbus.ObjectPath, error) {
	p := dbus.ObjectPath(name)
	if !strings.HasPrefix(name, "/") {
		var b strings.Builder
		for i := 0; i < len(name); i++ {
			c := name[i]
			if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, "_%02x", c)
			}
		}
		p = dbus.ObjectPath(libsecret.DBusPath + "/collection/" + b.String())
	}
	if !p.IsValid() {
		return "", fmt.Errorf("invalid Secret Service collection %q", name)
	}
	return p, nil
}

func (s *secretService) attributes(key string) map[string]string {
	return map[string]string{"service": s.service, "key": key}
}

func (s *secretService) Get(key string) (string, error) {
	var value string
	err := s.do(func(ctx context.Context) error {
		items, err := s.search(ctx, key)
		if err != nil {
			return err
		}
		if len(items) == 0 {
			return ErrNotFound
		}
		var secret libsecret.Secret
		err = s.object(items[0]).CallWithContext(ctx, ifaceItem+".GetSecret", 0, s.session.Path()).Store(&secret)
		if err != nil {
			return err
		}
		value = string(secret.Value)
		redact.Register(value)
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrLocked) && !errors.Is(err, ErrUnavailable) {
		err = fmt.Errorf("cannot read %q from the Secret Service: %w", key, err)
	}
	return value, err
}

func (s *secretService) Set(key, value string) error {
	redact.Register(value)
	err := s.do(func(ctx context.Context) error {
		props := map[string]dbus.Variant{
			ifaceItem + ".Label":      dbus.MakeVariant(s.service + ": " + key),
			ifaceItem + ".Attributes": dbus.MakeVariant(s.attributes(key)),
		}
		secret := libsecret.NewSecret(s.session, []byte{}, []byte(value), "text/plain")
		var item, prompt dbus.ObjectPath
		// replace=true: an item with the same attributes is updated in place.
		err := s.object(s.path).CallWithContext(ctx, ifaceCollection+".CreateItem", 0, props, secret, true).Store(&item, &prompt)
		if err != nil {
			return err
		}
		if prompt != noPrompt {
			return s.locked()
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrLocked) && !errors.Is(err, ErrUnavailable) {
		err = fmt.Errorf("cannot save %q in the Secret Service: %w", key, err)
	}
	return err
}

func (s *secretService) Remove(key string) error {
	err := s.do(func(ctx context.Context) error {
		items, err := s.search(ctx, key)
		if err != nil {
			return err
		}
		for _, item := range items {
			var prompt dbus.ObjectPath
			if err := s.object(item).CallWithContext(ctx, ifaceItem+".Delete", 0).Store(&prompt); err != nil {
				return err
			}
			if prompt != noPrompt {
				return s.locked()
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrLocked) && !errors.Is(err, ErrUnavailable) {
		err = fmt.Errorf("cannot remove %q from the Secret Service: %w", key, err)
	}
	return err
}

func (s *secretService) search(ctx context.Context, key string) ([]dbus.ObjectPath, error) {
	var items []dbus.ObjectPath
	err := s.object(s.path).CallWithContext(ctx, ifaceCollection+".SearchItems", 0, s.attributes(key)).Store(&items)
	return items, err
}

func (s *secretService) object(path dbus.ObjectPath) dbus.BusObject {
	return s.conn.Object(libsecret.DBusServiceName, path)
}

func (s *secretService) locked() error {
	return fmt.Errorf("%w: unlock the Secret Service collection %q (log in to the desktop session, or unlock it in a keyring manager such as seahorse) or use --store file", ErrLocked, s.collection)
}

// do runs op with a deadline, after connecting if need be and checking that
// the collection exists and is unlocked. Locking on the collection is checked
// every time: it may be locked while a long-running process works.
func (s *secretService) do(op func(ctx context.Context) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	if s.conn == nil {
		if err := s.connect(ctx); err != nil {
			return err
		}
	}
	err := s.checkCollection(ctx)
	if err == nil {
		err = op(ctx)
	}
	if errors.Is(err, dbus.ErrClosed) || errors.Is(err, context.DeadlineExceeded) {
		// Start afresh next time rather than reuse a dead or stuck connection.
		s.close()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("the Secret Service did not answer within %v", s.timeout)
	}
	return err
}

func (s *secretService) connect(ctx context.Context) error {
	addr, ok := busAddress()
	if !ok {
		return errNoBus
	}
	conn, err := dbus.Dial(addr)
	if err != nil {
		return fmt.Errorf("%w: cannot reach the D-Bus session bus: %v", ErrUnavailable, err)
	}
	// Auth and Hello take no context: closing the connection is what stops
	// them when the bus does not answer.
	done := make(chan error, 1)
	go func() {
		err := conn.Auth(nil)
		if err == nil {
			err = conn.Hello()
		}
		done <- err
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		conn.Close()
		<-done
		err = ctx.Err()
	}
	if err != nil {
		conn.Close()
		return fmt.Errorf("%w: cannot connect to the D-Bus session bus: %v", ErrUnavailable, err)
	}
	// "plain": the secret crosses the bus unencrypted, as with keyring and
	// secret-tool; the bus is private to the user.
	var output dbus.Variant
	var session dbus.ObjectPath
	err = conn.Object(libsecret.DBusServiceName, libsecret.DBusPath).
		CallWithContext(ctx, ifaceService+".OpenSession", 0, "plain", dbus.MakeVariant("")).Store(&output, &session)
	if err != nil {
		conn.Close()
		var dbusErr dbus.Error
		if errors.As(err, &dbusErr) && dbusErr.Name == "org.freedesktop.DBus.Error.ServiceUnknown" {
			return errNoService
		}
		return fmt.Errorf("%w: cannot open a Secret Service session: %v", ErrUnavailable, err)
	}
	s.conn = conn
	s.session = libsecret.NewSession(conn, session)
	return nil
}

func (s *secretService) checkCollection(ctx context.Context) error {
	var v dbus.Variant
	err := s.object(s.path).CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, ifaceCollection, "Locked").Store(&v)
	if err != nil {
		var dbusErr dbus.Error
		if errors.As(err, &dbusErr) {
			switch dbusErr.Name {
			case "org.freedesktop.DBus.Error.UnknownMethod", "org.freedesktop.DBus.Error.UnknownObject", "org.freedesktop.DBus.Error.UnknownInterface":
				return fmt.Errorf("%w: the Secret Service has no collection %q; name an existing one or use --store file", ErrUnavailable, s.collection)
			case "org.freedesktop.DBus.Error.ServiceUnknown":
				return errNoService
			}
		}
		return err
	}
	locked, ok := v.Value().(bool)
	if !ok {
		return fmt.Errorf("the Secret Service answered %s for the Locked property of %q", v.Signature(), s.collection)
	}
	if locked {
		return s.locked()
	}
	return nil
}

func (s *secretService) close() {
	if s.conn != nil {
		s.conn.Close()
		s.conn, s.session = nil, nil
	}
}
