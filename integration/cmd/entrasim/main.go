// Command entrasim runs the Entra ID simulator on its own, for demos and for tests
// driven from another process. It prints the settings a client needs as KEY=value
// lines on stdout, serves the controls under /_sim/ (see package entrasim) and stops
// cleanly on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("entrasim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8443", "listen address (loopback only)")
	dir := fs.String("dir", "", "folder for ca.pem and the client certificate (default: a temporary folder removed on exit)")
	latency := fs.Duration("latency", 0, "delay added to every token response")
	lifetime := fs.Duration("lifetime", time.Hour, "access token lifetime")
	verbose := fs.Bool("v", false, "log every request to stderr (refresh tokens as fingerprints only)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: entrasim [flags]\n\nRuns a simulator of Entra ID's v2.0 endpoints over TLS on 127.0.0.1.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "entrasim: unexpected argument %q\n", fs.Arg(0))
		return 2
	}

	opts := entrasim.Options{Dir: *dir, Addr: *addr, ControlAPI: true}
	if *verbose {
		opts.Logf = func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	}
	sim, err := entrasim.Start(opts)
	if err != nil {
		fmt.Fprintf(stderr, "entrasim: %v\n", err)
		return 1
	}
	sim.SetLatency(*latency)
	sim.SetTokenLifetime(*lifetime)

	fmt.Fprintf(stdout, `ENTRASIM_URL=%s
ENTRASIM_CA_FILE=%s
ENTRASIM_CERT_CLIENT_FILE=%s
ENTRASIM_HOME_TENANT=%s
ENTRASIM_HOME_DOMAIN=%s
ENTRASIM_CUSTOMER_TENANT=%s
ENTRASIM_CUSTOMER_DOMAIN=%s
ENTRASIM_USER=%s
ENTRASIM_PUBLIC_CLIENT_ID=%s
ENTRASIM_CONFIDENTIAL_CLIENT_ID=%s
ENTRASIM_CLIENT_SECRET=%s
ENTRASIM_CERT_CLIENT_ID=%s
`, sim.URL(), sim.CAFile(), sim.CertClientPEMFile(),
		entrasim.HomeTenantID, entrasim.HomeTenantDomain, entrasim.CustomerTenantID, entrasim.CustomerTenantDomain,
		entrasim.UserUPN, entrasim.PublicClientID, entrasim.ConfidentialClientID,
		entrasim.ClientSecret, // a fixed test-only value, so that demos can use the confidential client
		entrasim.CertClientID)
	fmt.Fprintf(stderr, "entrasim: serving %s; controls under %s/_sim/; stop with Ctrl-C\n", sim.URL(), sim.URL())

	<-ctx.Done()
	if err := sim.Close(); err != nil {
		fmt.Fprintf(stderr, "entrasim: %v\n", err)
		return 1
	}
	return 0
}
