package consent

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Countdown keeps one line at the bottom of a terminal up to date with the time left
// until a deadline ("waiting for sign-in: the code expires in 14:32"), rewritten in
// place with a carriage return on every tick and erased by Stop. It is only for a
// terminal: the caller decides that, and on a pipe shows nothing of it.
//
// Other output meant for the same terminal while the line is shown goes through the
// Countdown's Write, which lifts the line, writes, and puts it back below, so that a
// warning or a --verbose log never lands in the middle of it.
type Countdown struct {
	w        io.Writer
	deadline time.Time
	line     func(left string) string
	now      func() time.Time

	mu    sync.Mutex
	shown int  // width of the line on the terminal, 0 when none is
	held  bool // output ended mid-line: the countdown waits for its end
	ended bool

	stop chan struct{}
	done chan struct{}
}

// StartCountdown draws line(time left) on w at once and again on every tick until
// Stop. now and tick are the clock (time.Now and a time.Ticker's channel outside
// tests).
func StartCountdown(w io.Writer, deadline time.Time, line func(left string) string, now func() time.Time, tick <-chan time.Time) *Countdown {
	c := &Countdown{w: w, deadline: deadline, line: line, now: now, stop: make(chan struct{}), done: make(chan struct{})}
	c.mu.Lock()
	c.draw()
	c.mu.Unlock()
	go func() {
		defer close(c.done)
		for {
			select {
			case <-c.stop:
				return
			case <-tick:
				c.mu.Lock()
				if !c.ended && !c.held {
					c.draw()
				}
				c.mu.Unlock()
			}
		}
	}()
	return c
}

// Stop erases the line and stops redrawing; when it returns, nothing more is drawn.
// It may be called more than once, and on a nil Countdown.
func (c *Countdown) Stop() {
	if c == nil {
		return
	}
	c.mu.Lock()
	if !c.ended {
		c.ended = true
		c.erase()
		close(c.stop)
	}
	c.mu.Unlock()
	<-c.done
}

// Write writes p to the terminal above the line.
func (c *Countdown) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended || len(p) == 0 {
		return c.w.Write(p)
	}
	c.erase()
	n, err := c.w.Write(p)
	// Only a finished line of output makes room for the countdown below it.
	c.held = p[len(p)-1] != '\n' || err != nil
	if !c.held {
		c.draw()
	}
	return n, err
}

// draw rewrites the line in place; the caller holds mu.
func (c *Countdown) draw() {
	s := c.line(Left(c.deadline.Sub(c.now())))
	pad := ""
	if c.shown > len(s) {
		pad = strings.Repeat(" ", c.shown-len(s)) // a shorter line must not leave a tail
	}
	fmt.Fprintf(c.w, "\r%s%s", s, pad)
	c.shown = len(s) + len(pad)
}

// erase blanks the line and leaves the cursor at its start; the caller holds mu.
func (c *Countdown) erase() {
	if c.shown > 0 {
		fmt.Fprintf(c.w, "\r%s\r", strings.Repeat(" ", c.shown))
		c.shown = 0
	}
}

// Left is d as a person reads a countdown: "14:32", "1:02:03" above an hour, "0:00"
// once it has passed. Seconds are rounded up, so "0:00" means the time is up, not
// that most of a second is left.
func Left(d time.Duration) string {
	if d <= 0 {
		return "0:00"
	}
	s := int64((d + time.Second - 1) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
