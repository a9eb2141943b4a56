// Package suggest names the nearest of a few known words to one a person mistyped:
// the saved profile meant by --profile contosso, the alias meant by --scope grpah.
package suggest

import "strings"

// Nearest is the candidate closest to word by edit distance (case ignored), or ""
// when none is close enough to be what the person meant: at most a third of the
// word's length may differ (one edit for words of up to five letters), so that
// "tailspin" is not offered for "contoso". Ties go to the earlier candidate.
func Nearest(word string, candidates []string) string {
	w := strings.ToLower(word)
	limit := max(1, len([]rune(w))/3)
	best, bestDist := "", limit+1
	for _, c := range candidates {
		d := distance(w, strings.ToLower(c))
		if d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// distance is the Damerau-Levenshtein distance (optimal string alignment) of a and
// b: insertions, deletions, substitutions and swaps of neighbours each cost one,
// since "grpah" is one slip of the fingers from "graph", not two.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// Three rows suffice: the swap looks two rows back.
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
