package hostile

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Files planted in place of the stored openid-configuration are read like cache
// entries: a FIFO does not hang the helper past --timeout, a symbolic link to
// /dev/zero does not fill its memory, and a copy others could have written is not
// believed. Each is a miss: the document is fetched again and the get succeeds.
func TestPlantedMetadataFilesAreNotRead(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		plant func(t *testing.T, path string, stored []byte, p *idp)
	}{
		{"fifo", func(t *testing.T, path string, _ []byte, _ *idp) {
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"symlink to /dev/zero", func(t *testing.T, path string, _ []byte, _ *idp) {
			if err := os.Symlink("/dev/zero", path); err != nil {
				t.Fatal(err)
			}
		}},
		{"huge file", func(t *testing.T, path string, _ []byte, _ *idp) {
			f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Truncate(1 << 30); err != nil { // sparse: a gigabyte of nothing
				t.Fatal(err)
			}
		}},
		{"writable by others", func(t *testing.T, path string, stored []byte, p *idp) {
			// The stored document, its token endpoint moved to another host, as another
			// local user would plant it: the helper must not believe it.
			var doc map[string]any
			if err := json.Unmarshal(stored, &doc); err != nil {
				t.Fatal(err)
			}
			body := doc["body"].(map[string]any)
			body["token_endpoint"] = strings.Replace(body["token_endpoint"].(string), p.url, p.other.url, 1)
			doc["fetched_at"] = time.Now().UTC().Format(time.RFC3339)
			planted, _ := json.Marshal(doc)
			if err := os.WriteFile(path, planted, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, 0o666); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e, p := env(t)
			// One get through the proxy stores its documents; each is then replaced.
			if res := run(t, e, 60*time.Second, "get", "--scope", "graph"); res.Code != 0 {
				t.Fatalf("first get: exit %d\n%s", res.Code, res.Stderr)
			}
			dir := metadataDir(e)
			docs, err := filepath.Glob(filepath.Join(dir, "*.json"))
			if err != nil || len(docs) == 0 {
				t.Fatalf("no metadata documents in %s (%v)", dir, err)
			}
			for _, d := range docs {
				stored, err := os.ReadFile(d)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Remove(d); err != nil {
					t.Fatal(err)
				}
				c.plant(t, d, stored, p)
			}
			before := p.hits(r0(p))
			res := run(t, e, 30*time.Second, "get", "-v", "--scope", "graph", "--force-refresh", "--timeout", "10s")
			if res.Code != 0 {
				t.Fatalf("get with a planted %s: exit %d\n%s", c.name, res.Code, res.Stderr)
			}
			if p.hits(r0(p)) != before+1 {
				t.Fatalf("%d token requests, want 1", p.hits(r0(p))-before)
			}
			if res.rssKB > 100<<10 {
				t.Fatalf("peak RSS %d KB", res.rssKB)
			}
			if !strings.Contains(res.Stderr, "metadata") {
				t.Fatalf("-v does not say why the stored document was not used:\n%s", res.Stderr)
			}
			p.noLeak(t, res)
			p.nothingAtOtherHosts(t)
			t.Logf("took %s\n%s", res.took, res.Stderr)
		})
	}
}
