//go:build !linux

package securestore

import "fmt"

func openSecretService(Config) (Store, error) {
	return nil, fmt.Errorf("%w: secret-service is a Linux store; use --store file", ErrUnavailable)
}

func probeSecretService(Config) (Store, bool) { return nil, false }
