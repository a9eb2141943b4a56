// Command pctoken-helper hands Microsoft Entra ID access tokens to scripts, kubectl and
// git, redeeming a refresh token stored once at consent (the Secure Application Model).
package main

import (
	"context"
	"os"

	"github.com/pctoken/pctoken-helper/cli"
	// A get the access-token cache answers is answered here, before the packages
	// behind cli are initialised (docs/performance.md).
	_ "github.com/pctoken/pctoken-helper/cli/hit/early"
)

func main() {
	os.Exit(cli.Run(context.Background(), os.Args[1:], cli.OS()))
}
