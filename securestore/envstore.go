package securestore

import (
	"fmt"
	"io"
	"sync"

	"github.com/pctoken/pctoken-helper/redact"
)

// envStore is CI mode: the refresh token comes from PCTOKEN_REFRESH_TOKEN and
// nothing can be saved.
type envStore struct {
	refreshKey   string
	refreshToken string
	warn         io.Writer
	warnedBefore func() bool
	warnOnce     sync.Once
}

// NewEnvStore returns the store of CI mode. Get(refreshKey) returns
// refreshToken (ErrNotFound when it is empty); Set(refreshKey, v) saves
// nothing, since a variable cannot be updated, and says so on warn, without the
// token: once per process, and not at all when warnedBefore (if not nil) reports
// that an earlier process said it for this token already (each step of a CI job is
// a new process). warnedBefore is asked only when there is something to say, and
// records that it is said. Other keys are never found, and setting or removing them
// does nothing.
func NewEnvStore(refreshKey, refreshToken string, warn io.Writer, warnedBefore func() bool) Store {
	if warn == nil {
		warn = io.Discard
	}
	redact.Register(refreshToken)
	return &envStore{refreshKey: refreshKey, refreshToken: refreshToken, warn: warn, warnedBefore: warnedBefore}
}

func (s *envStore) Get(key string) (string, error) {
	if key != s.refreshKey || s.refreshToken == "" {
		return "", ErrNotFound
	}
	return s.refreshToken, nil
}

func (s *envStore) Set(key, _ string) error {
	if key == s.refreshKey {
		s.warnOnce.Do(func() {
			if s.warnedBefore != nil && s.warnedBefore() {
				return
			}
			fmt.Fprintln(s.warn, "warning: the refresh token comes from PCTOKEN_REFRESH_TOKEN, which cannot be updated: the rotated refresh token was not saved")
		})
	}
	return nil
}

func (s *envStore) Remove(string) error { return nil }
