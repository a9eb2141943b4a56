package hostile

import (
	"bytes"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// hugeBody answers the token endpoint with status and a body of size bytes, written
// as fast as the helper reads it, starting as a token or error answer would.
func hugeBody(status int, start string, size int) hook {
	return func(p *idp, w http.ResponseWriter, r *http.Request, body []byte) bool {
		if !isToken(r) {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.WriteHeader(status)
		chunk := bytes.Repeat([]byte("A"), 64<<10)
		n, _ := w.Write([]byte(start))
		for n < size {
			m, err := w.Write(chunk[:min(len(chunk), size-n)])
			if err != nil {
				return true
			}
			n += m
		}
		return true
	}
}

// chunked is hugeBody without a Content-Length: the helper cannot refuse by the
// header and must stop reading by itself.
func chunked(status int, start string, size int) hook {
	h := hugeBody(status, start, size)
	return func(p *idp, w http.ResponseWriter, r *http.Request, body []byte) bool {
		return h(p, noLength{w}, r, body)
	}
}

type noLength struct{ http.ResponseWriter }

func (w noLength) WriteHeader(code int) {
	w.Header().Del("Content-Length")
	w.ResponseWriter.WriteHeader(code)
}

// A 100 MB answer, token or error, with or without Content-Length, is refused as
// transient and the process stays small.
func TestHugeBodiesAreBounded(t *testing.T) {
	t.Parallel()
	e, p := env(t)
	const size = 100 << 20
	// What a successful get costs here, for comparison: a few megabytes of runtime.
	ok := run(t, e, 60*time.Second, "get", "--scope", "graph")
	if ok.Code != 0 {
		t.Fatalf("honest get: exit %d\n%s", ok.Code, ok.Stderr)
	}
	for _, c := range []struct {
		name string
		h    hook
	}{
		{"token body", hugeBody(200, `{"token_type":"Bearer","expires_in":3600,"access_token":"`, size)},
		{"error body", hugeBody(400, `{"error":"invalid_grant","error_description":"`, size)},
		{"chunked token body", chunked(200, `{"token_type":"Bearer","expires_in":3600,"access_token":"`, size)},
		{"chunked error body", chunked(400, `{"error":"invalid_grant","error_description":"`, size)},
	} {
		t.Run(c.name, func(t *testing.T) {
			p.set(c.h)
			before := cached(t, e)
			res := run(t, e, 60*time.Second, "get", "--scope", "graph", "--force-refresh")
			p.refused(t, res, 4, "larger than")
			sameCache(t, before, cached(t, e))
			// The helper reads at most a mebibyte of it: its peak memory stays within
			// 40 MB of an honest get's (before the bound, 574-741 MB).
			if res.rssKB > ok.rssKB+40<<10 {
				t.Fatalf("peak RSS %d KB for a %d-byte answer (an honest get: %d KB)", res.rssKB, size, ok.rssKB)
			}
			t.Logf("peak RSS %d KB (honest get %d KB)", res.rssKB, ok.rssKB)
		})
	}
}

// A token answer that dribbles in, one byte at a time, ends at --timeout with a
// message saying what happened; so does a metadata request that never answers.
func TestSlowAnswersEndAtTimeout(t *testing.T) {
	t.Parallel()
	t.Run("dribbled token answer", func(t *testing.T) {
		t.Parallel()
		e, p := env(t)
		p.set(func(p *idp, w http.ResponseWriter, r *http.Request, body []byte) bool {
			if !isToken(r) {
				return false
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "100000")
			w.WriteHeader(200)
			for i := 0; i < 100000; i++ {
				if _, err := w.Write([]byte("{")); err != nil {
					return true
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return true
				case <-time.After(100 * time.Millisecond):
				}
			}
			return true
		})
		res := run(t, e, 45*time.Second, "get", "--scope", "graph", "--timeout", "3s")
		p.refused(t, res, 4, "still sending", "--timeout")
	})
	t.Run("hanging metadata", func(t *testing.T) {
		t.Parallel()
		e, p := env(t)
		p.set(func(p *idp, w http.ResponseWriter, r *http.Request, body []byte) bool {
			if !isOpenIDConfig(r) {
				return false
			}
			<-r.Context().Done()
			return true
		})
		res := run(t, e, 45*time.Second, "get", "--scope", "graph", "--timeout", "3s")
		p.refused(t, res, 4, "--timeout")
		if n := p.hits(r0(p)); n != 0 {
			t.Fatalf("%d token requests without metadata", n)
		}
	})
}

// A 200 from the token endpoint that is not a token answer is a transient failure
// with a plain message, not exit 1 with a decoder's words.
func TestMalformedTokenAnswerIsTransient(t *testing.T) {
	t.Parallel()
	e, p := env(t)
	for _, c := range []struct{ name, body, want string }{
		{"not json", `{"access_token": "eyJ`, "malformed token answer"},
		{"html", `<html><body>Sign in to the proxy</body></html>`, "malformed token answer"},
		{"no access token", `{"token_type":"Bearer","expires_in":3600}`, "without an access token"},
		{"access token not a string", `{"token_type":"Bearer","expires_in":3600,"access_token":42}`, "without an access token"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p.set(func(p *idp, w http.ResponseWriter, r *http.Request, body []byte) bool {
				if !isToken(r) {
					return false
				}
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(c.body))
				return true
			})
			before := cached(t, e)
			res := run(t, e, 60*time.Second, "get", "--scope", "graph", "--force-refresh")
			p.refused(t, res, 4, c.want)
			if bytes.Contains([]byte(res.Stderr), []byte("json decode")) || bytes.Contains([]byte(res.Stderr), []byte("server response error")) {
				t.Fatalf("MSAL's words reached the user:\n%s", res.Stderr)
			}
			sameCache(t, before, cached(t, e))
		})
	}
}

// An answer cut off by the server, or a connection closed before any answer, says
// so plainly: not "server response error:" with nothing after it.
func TestCutOffAnswersSaySo(t *testing.T) {
	t.Parallel()
	e, p := env(t)
	for _, c := range []struct {
		name string
		h    func(w http.ResponseWriter)
		want string
	}{
		{"body cut off", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(200)
			w.Write([]byte(`{"access_token":"eyJ`))
			w.(http.Flusher).Flush()
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}, "cut off after"},
		{"closed before answering", func(w http.ResponseWriter) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}, "closed the connection before answering"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p.set(func(p *idp, w http.ResponseWriter, r *http.Request, body []byte) bool {
				if !isToken(r) {
					return false
				}
				c.h(w)
				return true
			})
			before := cached(t, e)
			res := run(t, e, 60*time.Second, "get", "--scope", "graph", "--force-refresh")
			p.refused(t, res, 4, c.want)
			if bytes.Contains([]byte(res.Stderr), []byte("server response error")) {
				t.Fatalf("MSAL's words reached the user:\n%s", res.Stderr)
			}
			sameCache(t, before, cached(t, e))
		})
	}
}
