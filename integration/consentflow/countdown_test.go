package consentflow

import (
	"bytes"
	"context"
	"net/url"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/harness"
	"github.com/pctoken/pctoken-helper/internal/testpty"
)

// onTerminal is the helper running with a pseudo-terminal as its controlling
// terminal, stdin and stderr, as when a person runs it; stdout is kept apart.
type onTerminal struct {
	cmd    *exec.Cmd
	pty    *testpty.PTY
	stdout bytes.Buffer
	mu     sync.Mutex
	shown  bytes.Buffer // every byte the terminal received
	read   chan struct{}
}

func startOnTerminal(t *testing.T, e *harness.Env, vars []string, args ...string) *onTerminal {
	t.Helper()
	p := testpty.Open(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	r := &onTerminal{cmd: e.Command(ctx, args...), pty: p, read: make(chan struct{})}
	r.cmd.Env = append(r.cmd.Env, vars...)
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, p.Slave
	p.Attach(r.cmd, true)
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.Slave.Close() // the child holds it now; the master reads EOF once the child is gone
	go func() {
		defer close(r.read)
		buf := make([]byte, 4096)
		for {
			n, err := p.Master.Read(buf)
			r.mu.Lock()
			r.shown.Write(buf[:n])
			r.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { _ = r.cmd.Process.Kill(); _ = r.cmd.Wait() })
	return r
}

func (r *onTerminal) raw() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.shown.String()
}

// waitFor waits until the bytes the terminal received match re, and returns the match.
func (r *onTerminal) waitFor(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := re.FindStringSubmatch(r.raw()); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never showed %s; it shows %q", re, r.raw())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wait waits for the helper to end and returns its exit code and what stays on the
// screen.
func (r *onTerminal) wait(t *testing.T) (int, []string) {
	t.Helper()
	_ = r.cmd.Wait()
	<-r.read
	return r.cmd.ProcessState.ExitCode(), testpty.Screen(r.raw())
}

var (
	deviceMessage = regexp.MustCompile(`open the page (\S+) and enter the code (\S+) to authenticate`)
	frame         = regexp.MustCompile(`\rwaiting for sign-in: the code expires in (\d+):(\d\d)`)
)

// waitFrames waits until the terminal has received n different countdown frames and
// returns the seconds left each showed, in order.
func (r *onTerminal) waitFrames(t *testing.T, n int) []int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var secs []int
		for _, m := range frame.FindAllStringSubmatch(r.raw(), -1) {
			min, _ := strconv.Atoi(m[1])
			sec, _ := strconv.Atoi(m[2])
			if v := min*60 + sec; len(secs) == 0 || secs[len(secs)-1] != v {
				secs = append(secs, v)
			}
		}
		if len(secs) >= n {
			return secs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d countdown frames on the terminal, want %d; it shows %q", len(secs), n, r.raw())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// signIn is the person on another device: the verification page the message names,
// the code typed into its form.
func signIn(t *testing.T, e *harness.Env, page, code string) {
	t.Helper()
	resp, err := e.Sim.HTTPClient().PostForm(page, url.Values{"otc": {code}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("device login with %s: %s", code, resp.Status)
	}
}

// countdownLeft tells whether any part of a countdown line stays on the screen, also
// a tail that a shorter line written over it left.
func countdownLeft(screen []string) bool {
	for _, l := range screen {
		if strings.Contains(l, "waiting for sign-in") || strings.Contains(l, "expires in ") || strings.Contains(l, " left (--timeout)") {
			return true
		}
	}
	return false
}

func hasLine(screen []string, prefix string) bool {
	for _, l := range screen {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// On a terminal, the device-code wait shows a countdown to the code's expiry under
// the message, rewritten in place once a second, and erased when the sign-in is done:
// the consent summary starts on a clean line, and nothing of it stays on the screen.
func TestDeviceCodeCountdownOnATerminal(t *testing.T) {
	t.Parallel()
	e := harness.New(t)
	e.Sim.ApproveDeviceCodes(false) // the person signs in below, from the message
	// --timeout past the code's 15 minutes: the countdown is the code's own.
	r := startOnTerminal(t, e, nil, "consent", "--flow", "device-code", "--profile", "term", "--timeout", "20m")
	msg := r.waitFor(t, deviceMessage)
	// Frames follow each other in place (\r), counting down: the line is live.
	frames := r.waitFrames(t, 2)
	if frames[0] < 14*60 || frames[0] > 15*60 || frames[1] >= frames[0] {
		t.Fatalf("frames %v: want a countdown from about 15:00", frames)
	}

	signIn(t, e, msg[1], msg[2])
	code, screen := r.wait(t)
	if code != 0 {
		t.Fatalf("consent on a terminal: exit %d\nscreen %q", code, screen)
	}
	if r.stdout.Len() != 0 {
		t.Fatalf("consent wrote to stdout: %q", r.stdout.String())
	}
	if countdownLeft(screen) || !hasLine(screen, "To sign in, use a web browser") || !hasLine(screen, "Consent saved for profile term.") {
		t.Fatalf("the countdown must be gone and the summary on a line of its own; the screen shows:\n%s", strings.Join(screen, "\n"))
	}
	t.Logf("frames %v; the screen after sign-in:\n%s", frames, strings.Join(screen, "\n"))
}

// Where the countdown is not shown (a pipe, a dumb terminal), the message is all:
// no countdown and no carriage return. NO_COLOR is about colour only: the countdown,
// which has none, stays. With a --timeout shorter than the code's life, the
// countdown is to the timeout, and says so.
func TestDeviceCodeCountdownOnlyWhereItCanBeRedrawn(t *testing.T) {
	t.Parallel()
	t.Run("pipe", func(t *testing.T) {
		t.Parallel()
		e := harness.New(t)
		e.Sim.ApproveDeviceCodes(false)
		r := start(t, e, "consent", "--flow", "device-code")
		msg := deviceMessage.FindStringSubmatch(r.waitLine(t, 30*time.Second, deviceMessage.MatchString))
		signIn(t, e, msg[1], msg[2])
		res := r.wait(t)
		consentOK(t, res, "default")
		if strings.Contains(res.Stderr, "\r") || strings.Contains(res.Stderr, "waiting for sign-in") {
			t.Fatalf("a countdown on a pipe:\n%q", res.Stderr)
		}
	})
	for _, tc := range []struct {
		name      string
		vars      []string
		args      []string
		countdown *regexp.Regexp // nil: none
	}{
		{"dumb terminal", []string{"TERM=dumb"}, nil, nil},
		{"NO_COLOR", []string{"NO_COLOR=1"}, []string{"--timeout", "20m"}, frame},
		{"timeout first", nil, []string{"--timeout", "2m"}, regexp.MustCompile(`\rwaiting for sign-in: (2:00|1:5\d) left \(--timeout\)`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := harness.New(t)
			e.Sim.ApproveDeviceCodes(false)
			r := startOnTerminal(t, e, tc.vars, append([]string{"consent", "--flow", "device-code"}, tc.args...)...)
			msg := r.waitFor(t, deviceMessage)
			if tc.countdown != nil {
				r.waitFor(t, tc.countdown)
			}
			signIn(t, e, msg[1], msg[2])
			code, screen := r.wait(t)
			if code != 0 || !hasLine(screen, "Consent saved for profile default.") {
				t.Fatalf("exit %d, screen:\n%s", code, strings.Join(screen, "\n"))
			}
			if countdownLeft(screen) {
				t.Fatalf("the countdown stayed on the screen:\n%s", strings.Join(screen, "\n"))
			}
			if tc.countdown == nil && strings.Contains(r.raw(), "waiting for sign-in") {
				t.Fatalf("a countdown where it cannot be redrawn: %q", r.raw())
			}
		})
	}
}

// However the wait ends without a sign-in, the countdown is erased and the error
// stands on a line of its own: Ctrl-C (exit 130), --timeout (exit 3). No profile is
// saved.
func TestDeviceCodeCountdownErasedWhenTheWaitFails(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		timeout string
		ctrlC   bool
		code    int
		message string
	}{
		{"Ctrl-C", "20m", true, 130, "error: interrupted"},
		{"timeout", "6s", false, 3, "the device code was not used within the timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := harness.New(t)
			e.Sim.ApproveDeviceCodes(false)
			r := startOnTerminal(t, e, nil, "consent", "--flow", "device-code", "--timeout", tc.timeout)
			r.waitFor(t, regexp.MustCompile(`\rwaiting for sign-in: `))
			if tc.ctrlC {
				if _, err := r.pty.Master.WriteString("\x03"); err != nil { // the terminal's interrupt character
					t.Fatal(err)
				}
			}
			code, screen := r.wait(t)
			errLine := ""
			for _, l := range screen {
				if strings.Contains(l, tc.message) {
					errLine = l
				}
			}
			// The error line starts at the left edge (in colour on a terminal, so after
			// its escape sequence), with no trace of the countdown before it.
			clean := strings.TrimPrefix(errLine, "\x1b[1;31m")
			if code != tc.code || countdownLeft(screen) || !strings.HasPrefix(clean, "error:") {
				t.Fatalf("exit %d (want %d), screen:\n%s", code, tc.code, strings.Join(screen, "\n"))
			}
			if res := e.Run("status", "-o", "json"); strings.Contains(res.Stdout, `"default"`) {
				t.Fatalf("a profile was saved: %s", res.Stdout)
			}
		})
	}
}
