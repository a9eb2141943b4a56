package consent_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/consent"
)

// freePorts finds n consecutive ports that are free on 127.0.0.1 and [::1], below
// the kernel's ephemeral range so other tests' outgoing connections do not take them.
func freePorts(t *testing.T, n int) int {
	t.Helper()
	for range 100 {
		base := 20000 + rand.IntN(10000)
		var held []net.Listener
		ok := true
		for p := base; p < base+n && ok; p++ {
			for _, addr := range []string{"127.0.0.1", "::1"} {
				l, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(p)))
				if err != nil {
					if addr == "::1" && !hasIPv6() {
						continue
					}
					ok = false
					break
				}
				held = append(held, l)
			}
		}
		for _, l := range held {
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range found")
	return 0
}

func hasIPv6() bool {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// occupy holds addr:port with another listener for the rest of the test.
func occupy(t *testing.T, addr string, port int) {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("occupy port: %v", err)
	}
	t.Cleanup(func() { l.Close() })
}

// listen starts a listener on a fresh range and closes it after the test.
func listen(t *testing.T) *consent.Listener {
	t.Helper()
	base := freePorts(t, 1)
	l, err := consent.Listen(consent.PortRange{First: base, Last: base})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

type outcome struct {
	code string
	err  error
}

// wait runs Wait and then Finish, as the helper does, reporting the response as the
// outcome.
func wait(l *consent.Listener, ctx context.Context, state string) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		code, err := l.Wait(ctx, state)
		l.Finish(consent.Outcome{Err: err})
		ch <- outcome{code, err}
	}()
	return ch
}

func result(t *testing.T, ch <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return")
		return outcome{}
	}
}

func stillWaiting(t *testing.T, ch <-chan outcome) {
	t.Helper()
	select {
	case o := <-ch:
		t.Fatalf("Wait returned early: %q, %v", o.code, o.err)
	case <-time.After(50 * time.Millisecond):
	}
}

var client = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true},
	Timeout:   5 * time.Second,
}

type response struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, string(b)}
}

func get(t *testing.T, rawURL string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

func TestWaitCodeViaQuery(t *testing.T) {
	l := listen(t)
	if got, want := l.RedirectURI(), "http://localhost:"+strconv.Itoa(l.Port()); got != want {
		t.Fatalf("RedirectURI = %q, want %q", got, want)
	}
	ch := wait(l, t.Context(), "the-state")

	resp := get(t, l.RedirectURI()+"/?code=the-code&state=the-state&session_state=x")
	if resp.status != http.StatusOK || !strings.Contains(resp.body, "You can close this tab") {
		t.Fatalf("got %d %q", resp.status, resp.body)
	}
	if strings.Contains(resp.body, "the-code") {
		t.Error("success page shows the code")
	}
	for k, want := range map[string]string{
		"Cache-Control":   "no-store",
		"Content-Type":    "text/html; charset=utf-8",
		"Referrer-Policy": "no-referrer",
	} {
		if got := resp.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	// The policy allows nothing but the page's own style, by hash.
	csp := resp.header.Get("Content-Security-Policy")
	_, style, _ := strings.Cut(resp.body, "<style>")
	style, _, _ = strings.Cut(style, "</style>")
	sum := sha256.Sum256([]byte(style))
	if !strings.HasPrefix(csp, "default-src 'none'") || !strings.Contains(csp, "style-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") {
		t.Errorf("Content-Security-Policy = %q does not allow exactly the page's style", csp)
	}

	o := result(t, ch)
	if o.err != nil || o.code != "the-code" {
		t.Fatalf("Wait = %q, %v", o.code, o.err)
	}
	// Wait serves once: the port is released when it returns.
	if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
		c.Close()
		t.Error("listener still accepts connections after Wait returned")
	}
}

func TestWaitCodeViaFormPost(t *testing.T) {
	l := listen(t)
	ch := wait(l, t.Context(), "st")
	// Entra's form_post page posts to the redirect URI itself, without a path.
	form := url.Values{"code": {"posted-code"}, "state": {"st"}, "id_token": {"x.y.z"}}
	req, err := http.NewRequest(http.MethodPost, l.RedirectURI(), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp := do(t, req); resp.status != http.StatusOK {
		t.Fatalf("got %d %q", resp.status, resp.body)
	}
	if o := result(t, ch); o.err != nil || o.code != "posted-code" {
		t.Fatalf("Wait = %q, %v", o.code, o.err)
	}
}

func TestStrayRequestsDoNotEndTheFlow(t *testing.T) {
	l := listen(t)
	ch := wait(l, t.Context(), "good")
	base := l.RedirectURI()
	port := strconv.Itoa(l.Port())

	newReq := func(method, target, host, contentType, body string) *http.Request {
		req, err := http.NewRequest(method, target, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		return req
	}
	strays := []struct {
		name   string
		req    *http.Request
		status int
		body   string
	}{
		{"favicon", newReq("GET", base+"/favicon.ico", "", "", ""), 404, "Not found"},
		{"other path with the right state", newReq("GET", base+"/callback?code=c&state=good", "", "", ""), 404, "Not found"},
		{"wrong state", newReq("GET", base+"/?code=c&state=bad", "", "", ""), 400, "Request refused"},
		{"missing state", newReq("GET", base+"/?code=c", "", "", ""), 400, "Request refused"},
		{"error with wrong state", newReq("GET", base+"/?error=access_denied&state=bad", "", "", ""), 400, "Request refused"},
		{"repeated state", newReq("GET", base+"/?code=c&state=good&state=bad", "", "", ""), 400, "repeated parameter state"},
		{"neither code nor error", newReq("GET", base+"/?state=good", "", "", ""), 400, "neither code nor error"},
		{"malformed query", newReq("GET", base+"/?code=c;state=good", "", "", ""), 400, "malformed query"},
		{"foreign host", newReq("GET", "http://127.0.0.1:"+port+"/?code=c&state=good", "evil.example:"+port, "", ""), 400, "not addressed to localhost"},
		{"other port in host", newReq("GET", "http://127.0.0.1:"+port+"/?code=c&state=good", "localhost:1", "", ""), 400, "not addressed to localhost"},
		{"put", newReq("PUT", base+"/?code=c&state=good", "", "", ""), 405, "method PUT"},
		{"post as text", newReq("POST", base+"/", "", "text/plain", "code=c&state=good"), 415, "x-www-form-urlencoded"},
		{"post with query only", newReq("POST", base+"/?code=c&state=good", "", "application/x-www-form-urlencoded", ""), 400, "Request refused"},
	}
	for _, s := range strays {
		resp := do(t, s.req)
		if resp.status != s.status || !strings.Contains(resp.body, s.body) {
			t.Errorf("%s: got %d %q, want %d containing %q", s.name, resp.status, resp.body, s.status, s.body)
		}
		if resp.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control = %q", s.name, resp.header.Get("Cache-Control"))
		}
		stillWaiting(t, ch)
	}

	// 127.0.0.1 in the Host header is the browser's own name for us too.
	resp := do(t, newReq("GET", "http://127.0.0.1:"+port+"/?code=finally&state=good", "", "", ""))
	if resp.status != http.StatusOK {
		t.Fatalf("got %d %q", resp.status, resp.body)
	}
	if o := result(t, ch); o.err != nil || o.code != "finally" {
		t.Fatalf("Wait = %q, %v", o.code, o.err)
	}
}

func TestWaitAcceptsEmptyPath(t *testing.T) {
	l := listen(t)
	ch := wait(l, t.Context(), "s")
	// The absolute form of the request target has no path at all.
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	host := "localhost:" + strconv.Itoa(l.Port())
	fmt.Fprintf(c, "GET http://%s?code=no-path&state=s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host, host)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != consent.DonePath {
		t.Fatalf("status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if o := result(t, ch); o.err != nil || o.code != "no-path" {
		t.Fatalf("Wait = %q, %v", o.code, o.err)
	}
}

func TestWaitIdentityProviderError(t *testing.T) {
	l := listen(t)
	ch := wait(l, t.Context(), "s")
	desc := "AADSTS65004: User declined <script>alert(1)</script>\x1b[31m\r\nTrace ID: 1"
	resp := get(t, l.RedirectURI()+"/?"+url.Values{
		"error": {"access_denied"}, "error_description": {desc}, "state": {"s"},
	}.Encode())
	if resp.status != http.StatusOK || !strings.Contains(resp.body, "Sign-in failed") {
		t.Fatalf("got %d %q", resp.status, resp.body)
	}
	if strings.Contains(resp.body, "<script>") || !strings.Contains(resp.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("failure page does not escape the description: %q", resp.body)
	}

	o := result(t, ch)
	var authErr *consent.AuthError
	if !errors.As(o.err, &authErr) {
		t.Fatalf("Wait = %q, %v; want *AuthError", o.code, o.err)
	}
	if authErr.Code != "access_denied" {
		t.Errorf("Code = %q", authErr.Code)
	}
	want := "AADSTS65004: User declined <script>alert(1)</script>[31m\nTrace ID: 1"
	if authErr.Description != want {
		t.Errorf("Description = %q, want %q (control characters dropped)", authErr.Description, want)
	}
	if !strings.Contains(o.err.Error(), "access_denied") {
		t.Errorf("error %q does not name the code", o.err)
	}
}

func TestWaitTimeout(t *testing.T) {
	l := listen(t)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	ch := wait(l, ctx, "s")
	// A stray request while waiting does not change the outcome.
	get(t, l.RedirectURI()+"/favicon.ico")
	o := result(t, ch)
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Wait took %v after a 200ms timeout", elapsed)
	}
	if !errors.Is(o.err, context.DeadlineExceeded) || !strings.Contains(o.err.Error(), "not completed within the timeout") {
		t.Fatalf("Wait = %q, %v", o.code, o.err)
	}
	if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
		c.Close()
		t.Error("listener still accepts connections after the timeout")
	}
}

func TestWaitCancelled(t *testing.T) {
	l := listen(t)
	ctx, cancel := context.WithCancel(t.Context())
	ch := wait(l, ctx, "s")
	cancel()
	if o := result(t, ch); !errors.Is(o.err, context.Canceled) {
		t.Fatalf("Wait = %q, %v", o.code, o.err)
	}
}

func TestCloseEndsWaitAndFreesPort(t *testing.T) {
	l := listen(t)
	ch := wait(l, t.Context(), "s")
	stillWaiting(t, ch)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if o := result(t, ch); o.err == nil || !strings.Contains(o.err.Error(), "closed") {
		t.Fatalf("Wait = %q, %v", o.code, o.err)
	}
	l2, err := net.Listen("tcp4", l.Addr().String())
	if err != nil {
		t.Fatalf("port not released: %v", err)
	}
	l2.Close()
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestWaitMisuse(t *testing.T) {
	l := listen(t)
	if _, err := l.Wait(t.Context(), ""); err == nil {
		t.Error("Wait with an empty state succeeded")
	}
	l.Close()
	if _, err := l.Wait(t.Context(), "s"); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Wait after Close = %v", err)
	}
}

func TestRequestBeforeWaitIsServed(t *testing.T) {
	l := listen(t)
	// The browser may be quicker than the caller's call to Wait: its connection
	// waits in the backlog.
	got := make(chan response, 1)
	go func() {
		resp, err := client.Get(l.RedirectURI() + "/?code=early&state=s")
		if err != nil {
			got <- response{body: err.Error()}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- response{status: resp.StatusCode, body: string(b)}
	}()
	time.Sleep(100 * time.Millisecond)
	code, err := l.Wait(t.Context(), "s")
	if err != nil || code != "early" {
		t.Fatalf("Wait = %q, %v", code, err)
	}
	l.Finish(consent.Outcome{})
	if r := <-got; r.status != http.StatusOK {
		t.Fatalf("early request: %d %q", r.status, r.body)
	}
}

func TestListenSkipsTakenPort(t *testing.T) {
	base := freePorts(t, 3)
	occupy(t, "127.0.0.1", base)
	l, err := consent.Listen(consent.PortRange{First: base, Last: base + 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Port() != base+1 || l.RedirectURI() != "http://localhost:"+strconv.Itoa(base+1) {
		t.Fatalf("port %d, redirect URI %q; want %d", l.Port(), l.RedirectURI(), base+1)
	}
}

func TestListenSkipsPortTakenOnIPv6Loopback(t *testing.T) {
	if !hasIPv6() {
		t.Skip("no IPv6 loopback")
	}
	// A browser may resolve localhost to ::1 first; a program there would get the
	// redirect, so such a port counts as taken.
	base := freePorts(t, 2)
	occupy(t, "::1", base)
	l, err := consent.Listen(consent.PortRange{First: base, Last: base + 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Port() != base+1 {
		t.Fatalf("port %d, want %d", l.Port(), base+1)
	}
	// And the flow works over ::1 as well.
	ch := wait(l, t.Context(), "s")
	if resp := get(t, fmt.Sprintf("http://[::1]:%d/?code=v6&state=s", l.Port())); resp.status != http.StatusOK {
		t.Fatalf("got %d %q", resp.status, resp.body)
	}
	if o := result(t, ch); o.code != "v6" {
		t.Fatalf("Wait = %q, %v", o.code, o.err)
	}
}

func TestListenWholeRangeTaken(t *testing.T) {
	base := freePorts(t, 3)
	for p := base; p < base+3; p++ {
		occupy(t, "127.0.0.1", p)
	}
	r := consent.PortRange{First: base, Last: base + 2}
	_, err := consent.Listen(r)
	if err == nil {
		t.Fatal("Listen succeeded with every port taken")
	}
	for _, want := range []string{r.String(), "--port-range", "address already in use"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestListenInvalidRange(t *testing.T) {
	for _, r := range []consent.PortRange{{}, {First: 10, Last: 9}, {First: 1, Last: 70000}} {
		if l, err := consent.Listen(r); err == nil {
			l.Close()
			t.Errorf("Listen(%v) succeeded", r)
		}
	}
}

func TestListenerIsLoopbackOnly(t *testing.T) {
	l := listen(t)
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok || !addr.IP.Equal(net.IPv4(127, 0, 0, 1)) || addr.Port != l.Port() {
		t.Fatalf("Addr = %v, want 127.0.0.1:%d", l.Addr(), l.Port())
	}
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	tried := 0
	for _, a := range ifaddrs {
		ipnet, ok := a.(*net.IPNet)
		if !ok || ipnet.IP.IsLoopback() || ipnet.IP.IsLinkLocalUnicast() {
			continue
		}
		tried++
		target := net.JoinHostPort(ipnet.IP.String(), strconv.Itoa(l.Port()))
		c, err := net.DialTimeout("tcp", target, time.Second)
		if err == nil {
			c.Close()
			t.Errorf("connection to %s accepted", target)
		}
	}
	if tried == 0 {
		t.Skip("machine has no non-loopback address to try")
	}
}

func TestNoGoroutinesLeftBehind(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 3 {
		l := listen(t)
		ch := wait(l, t.Context(), "s")
		get(t, l.RedirectURI()+"/favicon.ico")
		get(t, l.RedirectURI()+"/?code=c&state=s")
		result(t, ch)
		l.Close()

		l = listen(t)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
		result(t, wait(l, ctx, "s"))
		cancel()

		l = listen(t)
		l.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// noFollow sees the listener's redirects instead of following them.
var noFollow = &http.Client{
	Transport:     &http.Transport{DisableKeepAlives: true},
	Timeout:       5 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// The response is answered with a 303 to /done, which waits for Finish and shows its
// outcome, remedy included; a second delivery of the response goes to the same page
// and is never returned again.
func TestDoneShowsTheOutcome(t *testing.T) {
	l := listen(t)
	codes := make(chan string, 2)
	go func() {
		code, err := l.Wait(t.Context(), "s")
		codes <- code
		if err == nil {
			err = errors.New("the client secret is invalid (AADSTS7000215)")
		}
		l.Finish(consent.Outcome{Err: err, Remedy: "set PCTOKEN_CLIENT_SECRET <to a valid secret>"})
	}()
	if resp := get(t, l.RedirectURI()+consent.DonePath); resp.status != http.StatusNotFound || !strings.Contains(resp.body, "No sign-in yet") {
		t.Fatalf("/done before the response: %d %q", resp.status, resp.body)
	}
	resp, err := noFollow.Get(l.RedirectURI() + "/?code=c1&state=s")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != consent.DonePath || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("response answered %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A second delivery (a reload of the redirect URL) lands on the same page.
	page := get(t, l.RedirectURI()+"/?code=c2&state=s")
	if page.status != http.StatusOK {
		t.Fatalf("result page: %d %q", page.status, page.body)
	}
	for _, want := range []string{"<title>Sign-in failed - pctoken-helper</title>", "The client secret is invalid (AADSTS7000215)",
		"What to do", "set PCTOKEN_CLIENT_SECRET &lt;to a valid secret&gt;", `lang="en"`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("result page lacks %q:\n%s", want, page.body)
		}
	}
	if strings.Contains(page.body, "c1") || strings.Contains(page.body, "c2") || strings.Contains(page.body, "<script") {
		t.Errorf("result page shows a code or has a script:\n%s", page.body)
	}
	if code := <-codes; code != "c1" {
		t.Fatalf("Wait = %q", code)
	}
	select {
	case code := <-codes:
		t.Fatalf("a second code was returned: %q", code)
	default:
	}
}

// A browser that never comes for /done does not hold Finish beyond its grace.
func TestFinishWithoutBrowser(t *testing.T) {
	l := listen(t)
	ch := wait(l, t.Context(), "s")
	resp, err := noFollow.Get(l.RedirectURI() + "/?code=c&state=s")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if o := result(t, ch); o.code != "c" {
		t.Fatalf("Wait = %q, %v", o.code, o.err)
	}
	if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
		c.Close()
		t.Error("listener still accepts connections after Finish")
	}
}
