package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/pctoken/pctoken-helper/consent"
	"github.com/pctoken/pctoken-helper/entra"
)

// liveStderr is stderr when a person watches it on a terminal that can redraw a
// line in place: the one rule for check's progress bar and consent's countdown
// (never on a pipe, a file or a CI log, nor on TERM=dumb). Colour adds NO_COLOR to it.
func (e Env) liveStderr() (*os.File, bool) {
	f, ok := e.Stderr.(*os.File)
	if !ok || e.Getenv("TERM") == "dumb" || !term.IsTerminal(int(f.Fd())) {
		return nil, false
	}
	return f, true
}

// deviceCodePrompt is the show callback of the device-code flow: the identity
// provider's message on stderr and, on a live terminal, a countdown under it to the
// moment the wait ends (the code's expiry, or --timeout when that comes first).
// end erases the countdown; call it when the wait is over, however it ended.
func (a *App) deviceCodePrompt(ctx context.Context) (show func(entra.DevicePrompt), end func()) {
	stop := func() {}
	show = func(p entra.DevicePrompt) {
		fmt.Fprintln(a.Stderr, p.Message)
		f, ok := a.liveStderr()
		if !ok || p.ExpiresOn.IsZero() {
			return
		}
		until, line := p.ExpiresOn, codeExpiresLine
		if d, ok := ctx.Deadline(); ok && d.Before(until) {
			until, line = d, timeoutLine
		}
		ticker := time.NewTicker(time.Second)
		cd := consent.StartCountdown(f, until, line, a.Now, ticker.C)
		// Warnings and --verbose logs during the wait go above the countdown line.
		stderr := a.Stderr
		a.Stderr = cd
		stop = func() {
			cd.Stop()
			ticker.Stop()
			a.Stderr = stderr
		}
	}
	return show, func() { stop() }
}

func codeExpiresLine(left string) string { return "waiting for sign-in: the code expires in " + left }
func timeoutLine(left string) string {
	return "waiting for sign-in: " + left + " left (--timeout)"
}
