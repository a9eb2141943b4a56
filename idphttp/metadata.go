package idphttp

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pctoken/pctoken-helper/internal/safefs"
)

// MetadataOptions tunes NewMetadataTransport.
type MetadataOptions struct {
	// Dir holds one file per document. Empty turns the cache off.
	Dir string
	// MaxAge is how long a stored copy is served; zero or less means DefaultMaxAge.
	MaxAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logf receives --verbose diagnostics; nil discards them.
	Logf func(format string, args ...any)
}

// DefaultMaxAge is how long a stored metadata document is served. Entra's endpoints
// for a tenant do not move; a day bounds how long a changed one goes unnoticed.
const DefaultMaxAge = 24 * time.Hour

// maxMetadataBody is the largest document stored. Entra's are a few kilobytes;
// a larger answer passes through uncached.
const maxMetadataBody = 1 << 20

// maxMetadataFile bounds what is read of a stored copy: the document and its URL,
// in JSON.
const maxMetadataFile = 2*maxMetadataBody + 64<<10

// The two GETs MSAL makes before a token request in every new process.
const (
	openIDConfigSuffix = "/v2.0/.well-known/openid-configuration"
	instanceDiscovery  = "/common/discovery/instance"
)

// NewMetadataTransport wraps next so that GETs of an authority's
// .../v2.0/.well-known/openid-configuration and of <host>/common/discovery/instance
// are answered from a copy in o.Dir younger than o.MaxAge. Otherwise the request goes
// to next, and a 200 answer whose body is a JSON object is stored for the next
// process, keyed by the SHA-256 of its URL. Every other request passes through
// untouched.
//
// The cache can only save requests, never fail one: an unreadable or damaged copy is
// a miss and a failed write is logged. Because these documents name the token
// endpoint, which receives refresh tokens, a folder that other users could write to
// (group or world writable, or not owned by us) is not used at all.
func NewMetadataTransport(next http.RoundTripper, o MetadataOptions) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return &metadataTransport{next: next, o: o}
}

type metadataTransport struct {
	next http.RoundTripper
	o    MetadataOptions
}

func (t *metadataTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.o.Dir == "" || !isMetadataRequest(req) {
		return t.next.RoundTrip(req)
	}
	url := canonicalURL(req)
	path := filepath.Join(t.o.Dir, cacheKey(url)+".json")
	if err := checkDir(t.o.Dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.o.Logf("metadata cache not used: %v", err)
		return t.next.RoundTrip(req)
	}
	if body, age, ok := t.load(path, url); ok {
		t.o.Logf("metadata: %s served from disk (age %s)", req.URL.Path, age.Round(time.Second))
		return cachedResponse(req, body), nil
	}

	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	data, complete, rest := readUpTo(resp.Body, maxMetadataBody)
	if !complete {
		resp.Body = rest
		return resp, nil
	}
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(data))
	if !isJSONObject(data) {
		return resp, nil
	}
	// A document the guard refuses (see Restrict) is not kept either: once the
	// server is fixed, the next process fetches it again.
	if err := keepable(req, data); err != nil {
		t.o.Logf("metadata: not kept on disk: %v", err)
		return resp, nil
	}
	if err := t.store(path, entry{URL: url, FetchedAt: t.o.Now(), Body: data}); err != nil {
		t.o.Logf("metadata: not kept on disk: %v", err)
	}
	return resp, nil
}

func isMetadataRequest(req *http.Request) bool {
	return req.Method == http.MethodGet && req.URL != nil &&
		(strings.HasSuffix(req.URL.Path, openIDConfigSuffix) || req.URL.Path == instanceDiscovery)
}

// canonicalURL names the document: MSAL asks for ".../openid-configuration?" with an
// empty query, and the host's case does not matter.
func canonicalURL(req *http.Request) string {
	u := *req.URL
	u.ForceQuery = false
	u.Fragment, u.RawFragment = "", ""
	u.Host = strings.ToLower(u.Host)
	return u.String()
}

func cacheKey(url string) string {
	sum := sha256.Sum256([]byte(url))
	return hex.EncodeToString(sum[:])
}

// entry is a stored document, as it is on disk.
type entry struct {
	URL       string          `json:"url"`
	FetchedAt time.Time       `json:"fetched_at"`
	Body      json.RawMessage `json:"body"`
}

// decodeEntry parses a stored document and checks it is the one for url.
func decodeEntry(data []byte, url string) (entry, error) {
	var e entry
	if err := json.Unmarshal(data, &e); err != nil {
		return entry{}, err
	}
	switch {
	case e.URL != url:
		return entry{}, errors.New("stored for another url")
	case e.FetchedAt.IsZero():
		return entry{}, errors.New("no fetch time")
	case !isJSONObject(e.Body):
		return entry{}, errors.New("body is not a json object")
	}
	return e, nil
}

func (t *metadataTransport) load(path, url string) (body []byte, age time.Duration, ok bool) {
	// Read like the access-token cache's entries: a FIFO planted here must not hang
	// the process, nor a symbolic link to /dev/zero fill its memory.
	data, err := safefs.ReadFile(path, maxMetadataFile)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			t.o.Logf("metadata: %v", err)
		}
		return nil, 0, false
	}
	e, err := decodeEntry(data, url)
	if err != nil {
		t.o.Logf("metadata: ignoring damaged %s: %v", filepath.Base(path), err)
		return nil, 0, false
	}
	// A copy dated in the future (the clock stepped back) is not trusted to be fresh.
	age = t.o.Now().Sub(e.FetchedAt)
	if age < 0 || age >= t.o.MaxAge {
		return nil, age, false
	}
	return e.Body, age, true
}

func (t *metadataTransport) store(path string, e entry) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(t.o.Dir, 0o700); err != nil {
		return err
	}
	// Checked again: the folder may have been created by someone else just now.
	if err := checkDir(t.o.Dir); err != nil {
		return err
	}
	f, err := os.CreateTemp(t.o.Dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after a successful rename there is nothing left to remove
	// CreateTemp makes the file 0600 already. No fsync: a copy torn by a crash is
	// read as damaged, which is a miss.
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// checkDir refuses a folder that someone else could write to, by the cache's rules.
func checkDir(dir string) error { _, err := safefs.CheckDir(dir); return err }

func isJSONObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}

func cachedResponse(req *http.Request, body []byte) *http.Response {
	return &http.Response{
		Status:     "200 OK",
		StatusCode: http.StatusOK,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header: http.Header{
			"Content-Type":   {"application/json; charset=utf-8"},
			"Content-Length": {strconv.Itoa(len(body))},
		},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}
