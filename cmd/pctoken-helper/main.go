// Command pctoken-helper hands Microsoft Entra ID access tokens to scripts, kubectl and
// git, redeeming a refresh token stored once at consent (the Secure Application Model).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/pctoken/pctoken-helper/cli"
	// A get the access-token cache answers is answered here, before the packages
	// behind cli are initialised (docs/performance.md).
	_ "github.com/pctoken/pctoken-helper/cli/hit/early"
)

func main() {
	// Ctrl-C or a TERM cancels the run's context: a refresh in flight is abandoned
	// before its answer is saved, and the cache and store stay as they were.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.OS())
	stop()
	os.Exit(code)
}
