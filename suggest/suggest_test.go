package suggest

import "testing"

func TestNearest(t *testing.T) {
	profiles := []string{"contoso", "fabrikam", "tailspin", "default"}
	aliases := []string{"aad-graph", "aks", "arm", "azure-devops", "exchange", "graph", "partner-center"}
	for _, tt := range []struct {
		word       string
		candidates []string
		want       string
	}{
		{"contosso", profiles, "contoso"},
		{"Contoso", profiles, "contoso"},
		{"fabrikan", profiles, "fabrikam"},
		{"tialspin", profiles, "tailspin"},
		{"northwind", profiles, ""},
		{"grpah", aliases, "graph"},
		{"gaph", aliases, "graph"},
		{"partnercenter", aliases, "partner-center"},
		{"akss", aliases, "aks"},
		{"exchnage", aliases, "exchange"},
		{"x", aliases, ""},
		{"", aliases, ""},
		{"anything", nil, ""},
	} {
		if got := Nearest(tt.word, tt.candidates); got != tt.want {
			t.Errorf("Nearest(%q) = %q, want %q", tt.word, got, tt.want)
		}
	}
}

func TestDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"graph", "grpah", 1},
		{"kitten", "sitting", 3}, {"ca", "abc", 3}, {"über", "uber", 1},
	} {
		if got := distance(tt.a, tt.b); got != tt.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := distance(tt.b, tt.a); got != tt.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.b, tt.a, got, tt.want)
		}
	}
}

func FuzzNearest(f *testing.F) {
	f.Add("grpah", "graph")
	f.Add("\xff\xfe", "a")
	f.Fuzz(func(t *testing.T, word, cand string) {
		got := Nearest(word, []string{cand})
		if got != "" && got != cand {
			t.Fatalf("Nearest returned %q, not a candidate", got)
		}
		if distance(word, word) != 0 {
			t.Fatal("distance of a word to itself is not 0")
		}
	})
}
