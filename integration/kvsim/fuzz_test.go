package kvsim

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzRequestBodies: whatever a client sends as a PUT or PATCH body, the simulator
// answers with a status and Key Vault's JSON (a bundle or an error), and keeps its
// state consistent.
func FuzzRequestBodies(f *testing.F) {
	f.Add(`{"value":"rt","tags":{"a":"b"},"contentType":"text/plain"}`, `{"attributes":{"enabled":false},"tags":{}}`)
	f.Add(`{"value":null}`, `{"attributes":null}`)
	f.Add(`[`, `{"tags":{"x":"`+strings.Repeat("y", 300)+`"}}`)
	s := &Sim{now: time.Now, secrets: map[string]*secret{}, roles: map[string]Role{}, stats: map[string]int{}, window: map[string]*windowCount{}}
	f.Fuzz(func(t *testing.T, put, patch string) {
		w := httptest.NewRecorder()
		s.serveSet(w, httptest.NewRequest("PUT", "https://v.vault.azure.net/secrets/s?api-version=1", strings.NewReader(put)), "v", "s", nil)
		var any map[string]json.RawMessage
		if json.Unmarshal(w.Body.Bytes(), &any) != nil || (w.Code != 200 && any["error"] == nil) {
			t.Fatalf("PUT %q: %d %s", put, w.Code, w.Body)
		}
		w = httptest.NewRecorder()
		s.serveUpdate(w, httptest.NewRequest("PATCH", "https://v.vault.azure.net/secrets/s/?api-version=1", strings.NewReader(patch)), "v", "s", []string{""})
		if json.Unmarshal(w.Body.Bytes(), &any) != nil || (w.Code != 200 && any["error"] == nil) {
			t.Fatalf("PATCH %q: %d %s", patch, w.Code, w.Body)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, sec := range s.secrets {
			for _, v := range sec.versions {
				if v.ID == "" || len(v.Tags) > 15 || len(v.Value) > 25*1024 {
					t.Fatalf("stored %+v", v)
				}
			}
		}
	})
}
