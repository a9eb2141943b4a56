// Package early answers a get or exec-credential from the access-token cache while the
// program is still initialising its packages, and ends the process when it did; the
// program's main package imports it for that alone (see package hit for what it
// answers and why).
//
// Go initialises a program's packages one at a time, always the first, in import-path
// order, of those whose imports are all initialised (the Go spec, "Package
// initialization"). This package and hit need only light packages (os, encoding/json,
// crypto/sha256, net/url and the like); kong, MSAL, keyring, net/http and crypto/tls
// need far more, so they are initialised after this init: a hit never pays for them.
// The tests of package hit check that with GODEBUG=inittrace=1.
//
// Ending the process here skips nothing that needs to run: a hit takes no lock and
// starts nothing, and its answer has been written when os.Exit is called.
package early

import (
	"os"
	"time"

	"github.com/pctoken/pctoken-helper/cli/hit"
)

func init() {
	if code, ok := hit.Run(os.Args[1:], os.Stdout, os.Stderr, time.Now()); ok {
		os.Exit(code)
	}
}
