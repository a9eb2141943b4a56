package testpty

import "strings"

// Screen is what a terminal shows after the bytes raw were written to it, one string
// per line, trailing blanks trimmed: a carriage return goes back to the start of the
// line, a newline starts the next one, any other byte overwrites what is under the
// cursor. Enough for the helper's line redrawing (countdown, progress bar); escape
// sequences are kept as they are.
func Screen(raw string) []string {
	lines := [][]byte{nil}
	col := 0
	for i := 0; i < len(raw); i++ {
		cur := &lines[len(lines)-1]
		switch b := raw[i]; b {
		case '\r':
			col = 0
		case '\n':
			lines = append(lines, nil)
			col = 0
		default:
			if col < len(*cur) {
				(*cur)[col] = b
			} else {
				*cur = append(*cur, b)
			}
			col++
		}
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = strings.TrimRight(string(l), " ")
	}
	return out
}
