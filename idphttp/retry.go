package idphttp

import (
	"bytes"
	"context"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryOptions tunes NewRetryTransport. Zero fields take the defaults named below.
type RetryOptions struct {
	MaxAttempts   int           // total tries, default 4
	BaseDelay     time.Duration // first backoff ceiling, doubled per retry; default 200ms
	MaxDelay      time.Duration // backoff ceiling; default 5s
	MaxRetryAfter time.Duration // cap on a server's Retry-After, default 30s

	// Sleep waits d or until ctx ends, whichever is first, and then returns ctx's error
	// if it ended. nil means a real timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns a number in [0, 1) for the jitter. nil means math/rand/v2.
	Rand func() float64
	// Now is the clock a Retry-After date is measured against when the response has
	// no usable Date header. nil means time.Now.
	Now func() time.Time
	// Logf receives --verbose diagnostics. It never gets a body: request bodies carry
	// refresh tokens and client secrets.
	Logf func(format string, args ...any)
}

// Defaults of RetryOptions.
const (
	DefaultMaxAttempts = 4
	DefaultBaseDelay   = 200 * time.Millisecond
	DefaultMaxDelay    = 5 * time.Second
	// DefaultMaxRetryAfter bounds how long a throttled request waits: long enough for
	// Entra's usual short throttling windows, short enough to fit the default
	// 30s --timeout only once, so a longer ban ends as a transient failure rather
	// than a stalled script.
	DefaultMaxRetryAfter = 30 * time.Second
)

const (
	// maxReplayBody is the largest request body without GetBody that is kept in
	// memory for a retry. Token requests are a few kilobytes (a refresh token, perhaps
	// a client assertion); anything bigger is sent once and not retried.
	maxReplayBody = 1 << 20
	// maxDiscardBody is how much of a response about to be retried is kept, so its
	// connection can be reused and the response can still be returned if the wait is
	// cut short. Error pages from the identity provider are far smaller.
	maxDiscardBody = 64 << 10
)

func (o RetryOptions) withDefaults() RetryOptions {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.BaseDelay <= 0 {
		o.BaseDelay = DefaultBaseDelay
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = DefaultMaxDelay
	}
	if o.MaxRetryAfter <= 0 {
		o.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o
}

// NewRetryTransport wraps next so that transient failures are tried again:
// network errors (see IsTransient) and the statuses of IsTransientStatus, with
// exponential backoff and full jitter, or after the server's Retry-After (capped at
// MaxRetryAfter) when it sends one. Other statuses, invalid_grant and invalid_client
// among them, are returned at once.
//
// The request's context bounds everything: a wait that would pass its deadline is not
// started, and the last response or error is returned as it is. When retries end,
// the caller gets exactly what the last attempt produced, so a final 503 or 429 is a
// response, not an error.
func NewRetryTransport(next http.RoundTripper, o RetryOptions) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &retryTransport{next: next, o: o.withDefaults()}
}

type retryTransport struct {
	next http.RoundTripper
	o    RetryOptions
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	try, again := replayable(req)
	for attempt := 1; ; attempt++ {
		resp, err := t.next.RoundTrip(try)
		why, ok := retryable(ctx, resp, err)
		if !ok || again == nil || attempt >= t.o.MaxAttempts {
			return resp, err
		}
		wait := t.delay(resp, attempt)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			t.o.Logf("not retrying after %s: waiting %s would pass the deadline", why, wait.Round(time.Millisecond))
			return resp, err
		}
		keepSmall(resp)
		t.o.Logf("retrying after %s in %s (attempt %d/%d)", why, wait.Round(time.Millisecond), attempt+1, t.o.MaxAttempts)
		if t.o.Sleep(ctx, wait) != nil {
			return resp, err
		}
		next, rerr := again()
		if rerr != nil {
			t.o.Logf("not retrying: the request body cannot be sent again: %v", rerr)
			return resp, err
		}
		try = next
	}
}

// retryable says whether an attempt's outcome is worth another try, and names it for
// the log.
func retryable(ctx context.Context, resp *http.Response, err error) (string, bool) {
	if err != nil {
		// Once the caller's context has ended, any further try fails the same way.
		if ctx.Err() != nil || !IsTransient(err) {
			return "", false
		}
		return "error: " + err.Error(), true
	}
	return strconv.Itoa(resp.StatusCode), IsTransientStatus(resp.StatusCode)
}

// delay is how long to wait before attempt+1: the server's Retry-After when it gave
// one, else a full-jitter backoff.
func (t *retryTransport) delay(resp *http.Response, attempt int) time.Duration {
	if resp != nil {
		now := t.o.Now()
		// Measuring a date against the server's own clock keeps the wait right even
		// when ours is off.
		if date, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
			now = date
		}
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), now); ok {
			return min(d, t.o.MaxRetryAfter)
		}
	}
	ceiling := t.o.MaxDelay
	if shift := attempt - 1; shift < 32 && t.o.BaseDelay < t.o.MaxDelay>>shift {
		ceiling = t.o.BaseDelay << shift
	}
	r := t.o.Rand()
	if r < 0 || r >= 1 || math.IsNaN(r) {
		r = 0.5 // a broken jitter source must not stretch or skip the wait
	}
	return time.Duration(r * float64(ceiling))
}

// parseRetryAfter reads a Retry-After value, delta-seconds or an HTTP-date measured
// from now. A date in the past means no wait. Huge values saturate instead of
// overflowing; the caller caps them.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		secs, err := strconv.ParseUint(v, 10, 64)
		if err != nil && !isRangeErr(err) {
			return 0, false
		}
		if err != nil || secs > math.MaxInt64/uint64(time.Second) {
			return math.MaxInt64, true
		}
		return time.Duration(secs) * time.Second, true
	}
	when, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(when.Sub(now), 0), true
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// replayable returns the request for the first attempt and a function making a fresh
// copy for each retry, or a nil function when the body cannot be sent twice.
func replayable(req *http.Request) (*http.Request, func() (*http.Request, error)) {
	ctx := req.Context()
	switch {
	case req.Body == nil || req.Body == http.NoBody:
		return req, func() (*http.Request, error) { return req.Clone(ctx), nil }
	case req.GetBody != nil:
		return req, func() (*http.Request, error) {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r := req.Clone(ctx)
			r.Body = body
			return r, nil
		}
	}
	data, complete, rest := readUpTo(req.Body, maxReplayBody)
	first := req.Clone(ctx)
	if !complete {
		first.Body = rest
		return first, nil
	}
	req.Body.Close()
	getBody := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	first.Body, _ = getBody()
	first.GetBody = getBody
	return first, func() (*http.Request, error) {
		r := first.Clone(ctx)
		r.Body, _ = getBody()
		return r, nil
	}
}

// readUpTo reads at most limit bytes of r. complete says r ended cleanly within them
// (then r is left for the caller to close). Otherwise rest reads the same stream
// from its start, ending with r's own error if reading failed, and closes r.
func readUpTo(r io.ReadCloser, limit int64) (data []byte, complete bool, rest io.ReadCloser) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err == nil && int64(len(data)) <= limit {
		return data, true, nil
	}
	tail := io.Reader(r)
	if err != nil {
		tail = errReader{err}
	}
	return data, false, readCloser{io.MultiReader(bytes.NewReader(data), tail), r}
}

// keepSmall swaps a response's body for an in-memory copy of its start and releases
// the connection, so the response can still be handed back after a wait.
func keepSmall(resp *http.Response) {
	if resp == nil {
		return
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxDiscardBody))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(data))
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

type readCloser struct {
	io.Reader
	io.Closer
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
