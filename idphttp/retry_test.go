package idphttp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// clock records the waits a transport asks for instead of sleeping them.
type clock struct {
	mu     sync.Mutex
	sleeps []time.Duration
	logs   []string
}

func (c *clock) sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	return ctx.Err()
}

func (c *clock) logf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.logs = append(c.logs, fmt.Sprintf(format, args...))
}

func (c *clock) options() RetryOptions {
	return RetryOptions{Sleep: c.sleep, Rand: func() float64 { return 0.5 }, Logf: c.logf}
}

// scripted is a real TLS server answering each request with the next status of its
// script (the last one repeats), recording the bodies it received.
type scripted struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies []string
}

func newScripted(t *testing.T, answer func(n int, w http.ResponseWriter)) *scripted {
	t.Helper()
	s := &scripted{}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, string(b))
		n := len(s.bodies)
		s.mu.Unlock()
		answer(n, w)
	}))
	// Handshake failures are expected where a client does not trust the server.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	return s
}

func (s *scripted) attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bodies)
}

func statuses(codes ...int) func(int, http.ResponseWriter) {
	return func(n int, w http.ResponseWriter) {
		code := codes[min(n, len(codes))-1]
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"status":%d}`, code)
	}
}

func (s *scripted) client(o RetryOptions) *http.Client {
	return &http.Client{Transport: NewRetryTransport(s.srv.Client().Transport, o)}
}

func TestRetriesServerErrorsUntilSuccess(t *testing.T) {
	s := newScripted(t, statuses(503, 502, 200))
	c := &clock{}
	resp, err := s.client(c.options()).Get(s.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || s.attempts() != 3 {
		t.Fatalf("got %d after %d attempts, want 200 after 3", resp.StatusCode, s.attempts())
	}
	// Full jitter with Rand 0.5: half of 200ms, then half of 400ms.
	if want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}; fmt.Sprint(c.sleeps) != fmt.Sprint(want) {
		t.Errorf("waits %v, want %v", c.sleeps, want)
	}
	if want := "retrying after 503 in 100ms (attempt 2/4)"; len(c.logs) == 0 || c.logs[0] != want {
		t.Errorf("logs %q, want first %q", c.logs, want)
	}
}

func TestGivesUpAfterMaxAttemptsWithLastResponse(t *testing.T) {
	s := newScripted(t, statuses(500))
	c := &clock{}
	resp, err := s.client(c.options()).Get(s.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 500 || string(body) != `{"status":500}` || s.attempts() != DefaultMaxAttempts {
		t.Fatalf("got %d %q after %d attempts", resp.StatusCode, body, s.attempts())
	}
	// Backoff ceilings 200, 400, 800ms, capped later by MaxDelay.
	if want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}; fmt.Sprint(c.sleeps) != fmt.Sprint(want) {
		t.Errorf("waits %v, want %v", c.sleeps, want)
	}
}

func TestBackoffIsCappedByMaxDelay(t *testing.T) {
	tr := NewRetryTransport(nil, RetryOptions{BaseDelay: time.Second, MaxDelay: 3 * time.Second, Rand: func() float64 { return 0.999 }}).(*retryTransport)
	for attempt, want := range map[int]time.Duration{1: 999 * time.Millisecond, 2: 1998 * time.Millisecond, 3: 2997 * time.Millisecond, 40: 2997 * time.Millisecond} {
		if got := tr.delay(nil, attempt).Round(time.Millisecond); got != want {
			t.Errorf("attempt %d: delay %v, want %v", attempt, got, want)
		}
	}
}

func TestFinalErrorsAreNotRetried(t *testing.T) {
	for _, tc := range []struct {
		code int
		body string
	}{
		{400, `{"error":"invalid_grant","error_codes":[700082]}`},
		{401, `{"error":"invalid_client","error_codes":[7000215]}`},
		{403, `{"error":"access_denied"}`},
		{404, `{"error":"not_found"}`},
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			s := newScripted(t, func(_ int, w http.ResponseWriter) {
				w.WriteHeader(tc.code)
				io.WriteString(w, tc.body)
			})
			c := &clock{}
			resp, err := s.client(c.options()).Post(s.srv.URL, "application/x-www-form-urlencoded", strings.NewReader("grant_type=refresh_token"))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if s.attempts() != 1 || len(c.sleeps) != 0 || resp.StatusCode != tc.code || string(body) != tc.body {
				t.Fatalf("%d attempts, waits %v, answer %d %q", s.attempts(), c.sleeps, resp.StatusCode, body)
			}
		})
	}
}

func TestRetryAfterIsHonouredAndCapped(t *testing.T) {
	fixed := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		code       int
		retryAfter string
		date       string // "" leaves the server's own Date; "-" sends none
		cap        time.Duration
		want       time.Duration
	}{
		{"seconds", 429, "1", "", 0, time.Second},
		{"zero", 429, "0", "", 0, 0},
		{"above the default cap", 429, "3600", "", 0, DefaultMaxRetryAfter},
		{"above a set cap", 429, "10", "", 2 * time.Second, 2 * time.Second},
		{"date against the server's Date", 429, fixed.Add(3 * time.Second).Format(http.TimeFormat), fixed.Format(http.TimeFormat), 0, 3 * time.Second},
		{"date against our clock", 429, fixed.Add(7 * time.Second).Format(http.TimeFormat), "-", 0, 7 * time.Second},
		{"date in the past", 429, fixed.Add(-time.Hour).Format(http.TimeFormat), "-", 0, 0},
		{"on a 503 too", 503, "2", "", 0, 2 * time.Second},
		{"unparseable falls back to backoff", 429, "soon", "", 0, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScripted(t, func(n int, w http.ResponseWriter) {
				if n > 1 {
					return
				}
				switch tc.date {
				case "":
				case "-":
					w.Header()["Date"] = nil
				default:
					w.Header().Set("Date", tc.date)
				}
				w.Header().Set("Retry-After", tc.retryAfter)
				w.WriteHeader(tc.code)
			})
			c := &clock{}
			o := c.options()
			o.MaxRetryAfter = tc.cap
			o.Now = func() time.Time { return fixed }
			resp, err := s.client(o).Get(s.srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || s.attempts() != 2 {
				t.Fatalf("got %d after %d attempts", resp.StatusCode, s.attempts())
			}
			if len(c.sleeps) != 1 || c.sleeps[0] != tc.want {
				t.Fatalf("waits %v, want [%v]", c.sleeps, tc.want)
			}
		})
	}
}

func TestRetryAfterRealWait(t *testing.T) {
	s := newScripted(t, func(n int, w http.ResponseWriter) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(429)
		}
	})
	start := time.Now()
	resp, err := s.client(RetryOptions{}).Get(s.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if elapsed := time.Since(start); resp.StatusCode != 200 || elapsed < time.Second || elapsed > 3*time.Second {
		t.Fatalf("got %d after %v, want 200 after about 1s", resp.StatusCode, elapsed)
	}
}

func TestWaitPastDeadlineReturnsAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(int, http.ResponseWriter)
		code   int
	}{
		{"backoff", statuses(503), 503},
		{"retry-after", func(_ int, w http.ResponseWriter) {
			w.Header().Set("Retry-After", "20")
			w.WriteHeader(429)
		}, 429},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScripted(t, tc.answer)
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.srv.URL, nil)
			start := time.Now()
			// Real sleeping: the backoff (about 5s) exceeds the deadline, so none happens.
			resp, err := s.client(RetryOptions{BaseDelay: 10 * time.Second, MaxDelay: 10 * time.Second, Rand: func() float64 { return 0.5 }}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if elapsed := time.Since(start); resp.StatusCode != tc.code || s.attempts() != 1 || elapsed > time.Second {
				t.Fatalf("got %d after %d attempts in %v", resp.StatusCode, s.attempts(), elapsed)
			}
		})
	}
}

func TestCancelDuringWaitReturnsLastResponse(t *testing.T) {
	s := newScripted(t, statuses(503))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	time.AfterFunc(200*time.Millisecond, cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.srv.URL, nil)
	start := time.Now()
	resp, err := s.client(RetryOptions{BaseDelay: 10 * time.Second, MaxDelay: 10 * time.Second, Rand: func() float64 { return 0.5 }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if elapsed := time.Since(start); resp.StatusCode != 503 || string(body) != `{"status":503}` || elapsed > 2*time.Second {
		t.Fatalf("got %d %q after %v", resp.StatusCode, body, elapsed)
	}
}

func TestSilentServerEndsAtDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Accept and never answer; the connections are closed with the listener.
	var conns []net.Conn
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})

	client := NewClient("", RetryOptions{}, nil)
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+ln.Addr().String()+"/t/oauth2/v2.0/token", strings.NewReader("grant_type=refresh_token"))
	start := time.Now()
	resp, err := client.Do(req)
	elapsed := time.Since(start)
	if err == nil {
		resp.Body.Close()
		t.Fatal("want an error from a server that never answers")
	}
	if !IsTransient(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v: want a transient deadline error", err)
	}
	if elapsed < 300*time.Millisecond || elapsed > time.Second {
		t.Errorf("returned after %v, want about 300ms", elapsed)
	}
}

func TestPostBodyIsSentAgainIntact(t *testing.T) {
	form := "grant_type=refresh_token&client_id=00000000-0000-0000-0000-000000000001&refresh_token=" + strings.Repeat("r", 1800)
	for _, tc := range []struct {
		name    string
		getBody bool
	}{{"with GetBody", true}, {"without GetBody", false}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScripted(t, statuses(503, 500, 200))
			req, _ := http.NewRequest(http.MethodPost, s.srv.URL, strings.NewReader(form))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if !tc.getBody {
				req.GetBody = nil
				req.Body = io.NopCloser(req.Body) // a body net/http cannot rewind by itself
			}
			c := &clock{}
			resp, err := s.client(c.options()).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || s.attempts() != 3 {
				t.Fatalf("got %d after %d attempts", resp.StatusCode, s.attempts())
			}
			for i, b := range s.bodies {
				if b != form {
					t.Errorf("attempt %d sent %d bytes, want the %d of the form", i+1, len(b), len(form))
				}
			}
		})
	}
}

func TestLargeBodyWithoutGetBodyIsSentOnce(t *testing.T) {
	s := newScripted(t, statuses(503, 200))
	big := strings.Repeat("x", maxReplayBody+10)
	req, _ := http.NewRequest(http.MethodPost, s.srv.URL, io.NopCloser(strings.NewReader(big)))
	req.ContentLength = int64(len(big))
	c := &clock{}
	resp, err := s.client(c.options()).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || s.attempts() != 1 || s.bodies[0] != big {
		t.Fatalf("got %d after %d attempts, body intact: %v", resp.StatusCode, s.attempts(), s.bodies[0] == big)
	}
}

// hangUpOnce serves raw HTTP/1.1: its first connection is dropped after the request
// is read (with a reset when rst is set), later ones get 200 "ok". It records each
// request's body.
func hangUpOnce(t *testing.T, rst bool) (addr string, bodies func() []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seen []string
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 1; ; n++ {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			req, err := http.ReadRequest(bufio.NewReader(conn))
			if err != nil {
				conn.Close()
				continue
			}
			b, _ := io.ReadAll(req.Body)
			mu.Lock()
			seen = append(seen, string(b))
			mu.Unlock()
			if n == 1 {
				if rst {
					conn.(*net.TCPConn).SetLinger(0)
				}
				conn.Close()
				continue
			}
			io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
			conn.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

func TestDroppedConnectionIsRetried(t *testing.T) {
	for _, tc := range []struct {
		name string
		rst  bool
	}{{"closed", false}, {"reset", true}} {
		t.Run(tc.name, func(t *testing.T) {
			addr, bodies := hangUpOnce(t, tc.rst)
			c := &clock{}
			base := http.DefaultTransport.(*http.Transport).Clone()
			defer base.CloseIdleConnections()
			client := &http.Client{Transport: NewRetryTransport(base, c.options())}
			resp, err := client.Post("http://"+addr+"/t/oauth2/v2.0/token", "application/x-www-form-urlencoded", strings.NewReader("grant_type=refresh_token"))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			got := bodies()
			if resp.StatusCode != 200 || string(body) != "ok" || len(got) != 2 || got[1] != "grant_type=refresh_token" {
				t.Fatalf("got %d %q; server saw %q", resp.StatusCode, body, got)
			}
			if len(c.logs) != 1 || !strings.HasPrefix(c.logs[0], "retrying after error: ") {
				t.Errorf("logs %q", c.logs)
			}
		})
	}
}

func TestConnectionRefusedIsRetriedThenTransient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := &clock{}
	client := &http.Client{Transport: NewRetryTransport(http.DefaultTransport.(*http.Transport).Clone(), c.options())}
	_, err = client.Get("http://" + addr + "/")
	if err == nil || !IsTransient(err) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("error %v: want a transient connection refused", err)
	}
	if len(c.sleeps) != DefaultMaxAttempts-1 {
		t.Errorf("waited %d times, want %d", len(c.sleeps), DefaultMaxAttempts-1)
	}
}

func TestUntrustedCertificateIsFinal(t *testing.T) {
	s := newScripted(t, statuses(200))
	c := &clock{}
	client := &http.Client{Transport: NewRetryTransport(&http.Transport{TLSClientConfig: &tls.Config{}}, c.options())}
	_, err := client.Get(s.srv.URL)
	if err == nil || IsTransient(err) {
		t.Fatalf("error %v: want a final certificate error", err)
	}
	if len(c.sleeps) != 0 || s.attempts() != 0 {
		t.Errorf("waited %v, server saw %d requests; want no retry", c.sleeps, s.attempts())
	}
}

func TestIsTransient(t *testing.T) {
	urlErr := func(err error) error {
		return &url.Error{Op: "Post", URL: "https://idp.example/t/oauth2/v2.0/token", Err: err}
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{context.Canceled, false},
		{urlErr(context.Canceled), false},
		{context.DeadlineExceeded, true},
		{fmt.Errorf("server response error:\n %w", urlErr(context.DeadlineExceeded)), true},
		{urlErr(io.EOF), true},
		{urlErr(io.ErrUnexpectedEOF), true},
		{urlErr(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), true},
		{urlErr(&net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}), true},
		{urlErr(&net.DNSError{Err: "no such host", Name: "idp.example", IsNotFound: true}), true},
		{urlErr(timeoutErr{}), true},
		{urlErr(&net.OpError{Op: "remote error", Err: errors.New("tls: handshake failure")}), false},
		{urlErr(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), false},
		{urlErr(errors.New(`unsupported protocol scheme "ftp"`)), false},
		{errors.New("something else"), false},
	} {
		if got := IsTransient(tc.err); got != tc.want {
			t.Errorf("IsTransient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string { return "net/http: TLS handshake timeout" }
func (timeoutErr) Timeout() bool { return true }

func TestIsTransientStatus(t *testing.T) {
	transient := map[int]bool{408: true, 429: true, 500: true, 502: true, 503: true, 504: true}
	for code := 100; code < 600; code++ {
		if got := IsTransientStatus(code); got != transient[code] {
			t.Errorf("IsTransientStatus(%d) = %v", code, got)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true},
		{"  5 ", 5 * time.Second, true},
		{"120", 2 * time.Minute, true},
		{"99999999999999999999999", 1<<63 - 1, true},
		{"9223372037", 1<<63 - 1, true},
		{"Sun, 01 Mar 2026 12:00:30 GMT", 30 * time.Second, true},
		{"Sunday, 01-Mar-26 12:00:30 GMT", 30 * time.Second, true},
		{"Sun Mar  1 12:00:30 2026", 30 * time.Second, true},
		{"Sun, 01 Mar 2026 11:00:00 GMT", 0, true},
		{"", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"1.5", 0, false},
		{"5s", 0, false},
		{"tomorrow", 0, false},
	} {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "1", "120", "3600", " 7 ", "-1", "1e3", "99999999999999999999",
		"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "garbage", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseRetryAfter(s, now)
		if d < 0 {
			t.Fatalf("parseRetryAfter(%q) = %v, negative", s, d)
		}
		if !ok && d != 0 {
			t.Fatalf("parseRetryAfter(%q) = %v without ok", s, d)
		}
		// The transport caps whatever was parsed.
		tr := NewRetryTransport(nil, RetryOptions{Now: func() time.Time { return now }}).(*retryTransport)
		resp := &http.Response{Header: http.Header{"Retry-After": {s}}}
		if w := tr.delay(resp, 1); w < 0 || w > DefaultMaxRetryAfter {
			t.Fatalf("delay for Retry-After %q = %v, outside [0, cap]", s, w)
		}
	})
}

func TestHTTP2StreamResetIsRetried(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			panic(http.ErrAbortHandler) // the HTTP/2 server resets the stream: INTERNAL_ERROR
		}
		io.WriteString(w, "ok")
	}))
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	c := &clock{}
	client := &http.Client{Transport: NewRetryTransport(srv.Client().Transport, c.options())}
	resp, err := client.Post(srv.URL, "application/x-www-form-urlencoded", strings.NewReader("grant_type=refresh_token"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || n.Load() != 2 {
		t.Fatalf("got %s %d after %d attempts", resp.Proto, resp.StatusCode, n.Load())
	}
	if len(c.logs) != 1 || !strings.Contains(c.logs[0], "INTERNAL_ERROR") {
		t.Errorf("logs %q", c.logs)
	}
}
