package consent

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/internal/testpty"
)

func TestLeft(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{15 * time.Minute, "15:00"},
		{15*time.Minute - time.Nanosecond, "15:00"}, // rounded up: 0:00 only when the time is up
		{14*time.Minute + 32*time.Second, "14:32"},
		{59 * time.Second, "0:59"},
		{time.Nanosecond, "0:01"},
		{0, "0:00"},
		{-time.Hour, "0:00"},
		{time.Hour, "1:00:00"},
		{time.Hour - time.Second, "59:59"},
		{2*time.Hour + 3*time.Minute + 4*time.Second, "2:03:04"},
	} {
		if got := Left(tc.d); got != tc.want {
			t.Errorf("Left(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// terminal records what is written to it and tells each write as it happens.
type terminal struct {
	mu    sync.Mutex
	raw   strings.Builder
	wrote chan struct{}
}

func newTerminal() *terminal { return &terminal{wrote: make(chan struct{}, 100)} }

func (s *terminal) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.raw.Write(p)
	s.wrote <- struct{}{}
	return len(p), nil
}

func (s *terminal) bytes() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.raw.String()
}

// screen is what a terminal shows for the bytes written so far.
func (s *terminal) screen() []string { return testpty.Screen(s.bytes()) }

// clock is a fake clock moved by the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func waitingLine(left string) string { return "waiting for sign-in: the code expires in " + left }

// A countdown is drawn at once, rewritten in place on every tick (a shorter line
// leaves no tail), and erased by Stop, leaving the cursor on an empty line.
func TestCountdownRewritesInPlaceAndErases(t *testing.T) {
	term := newTerminal()
	clk := &clock{t: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)}
	tick := make(chan time.Time)
	deadline := clk.now().Add(10*time.Minute + 1*time.Second)

	c := StartCountdown(term, deadline, waitingLine, clk.now, tick)
	<-term.wrote
	if got := term.screen(); len(got) != 1 || got[0] != "waiting for sign-in: the code expires in 10:01" {
		t.Fatalf("first frame %q", got)
	}
	for _, want := range []string{"10:00", "9:59"} {
		clk.add(time.Second)
		tick <- clk.now()
		<-term.wrote
		if got := term.screen(); len(got) != 1 || got[0] != "waiting for sign-in: the code expires in "+want {
			t.Fatalf("after a tick: %q, want the line with %s in place", got, want)
		}
	}
	clk.add(time.Hour) // past the deadline: the line says so rather than going negative
	tick <- clk.now()
	<-term.wrote
	if got := term.screen(); got[0] != "waiting for sign-in: the code expires in 0:00" {
		t.Fatalf("past the deadline: %q", got)
	}

	c.Stop()
	c.Stop() // twice is fine
	if got := term.screen(); len(got) != 1 || got[0] != "" {
		t.Fatalf("after Stop the line must be gone: %q", got)
	}
	raw := term.bytes()
	if !strings.HasSuffix(raw, "\r") || strings.Contains(raw, "\n") || strings.Contains(raw, "\x1b") {
		t.Fatalf("the countdown writes only \\r, spaces and its text, and ends at the start of the line: %q", raw)
	}
	// Nothing is drawn once Stop has returned, whatever the clock does.
	select {
	case tick <- clk.now():
		t.Fatal("the countdown still takes ticks after Stop")
	default:
	}
	if term.bytes() != raw {
		t.Fatal("drawn after Stop")
	}
}

// Output written through the countdown while it is shown lands above it, whole; the
// countdown comes back below it. A line written in two parts is not torn by a tick.
func TestCountdownKeepsOtherOutputWhole(t *testing.T) {
	term := newTerminal()
	clk := &clock{t: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)}
	tick := make(chan time.Time)
	c := StartCountdown(term, clk.now().Add(5*time.Minute), waitingLine, clk.now, tick)
	<-term.wrote

	if _, err := c.Write([]byte("warning: something\n")); err != nil {
		t.Fatal(err)
	}
	got := term.screen()
	if len(got) != 2 || got[0] != "warning: something" || got[1] != "waiting for sign-in: the code expires in 5:00" {
		t.Fatalf("after a warning: %q", got)
	}

	_, _ = c.Write([]byte("pctoken-helper: half "))
	clk.add(time.Second)
	tick <- clk.now() // taken, and nothing drawn: the line is not finished
	_, _ = c.Write([]byte("and the rest\n"))
	got = term.screen()
	if len(got) != 3 || got[1] != "pctoken-helper: half and the rest" || got[2] != "waiting for sign-in: the code expires in 4:59" {
		t.Fatalf("after a line in two writes: %q", got)
	}
	c.Stop()
	if got := term.screen(); got[len(got)-1] != "" {
		t.Fatalf("after Stop: %q", got)
	}
	// After Stop, writes go straight through.
	_, _ = c.Write([]byte("Consent saved.\n"))
	if got := term.screen(); got[2] != "Consent saved." {
		t.Fatalf("after Stop, a write: %q", got)
	}
}

func TestNilCountdownStops(t *testing.T) {
	var c *Countdown
	c.Stop()
}
