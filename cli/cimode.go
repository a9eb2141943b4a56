package cli

// ciWarningNote is the cache note of CI mode's "the rotated refresh token was not
// saved" warning.
const ciWarningNote = "ci-rotation-not-saved"

// ciWarnedBefore is CI mode's record of its warning: it tells whether an earlier
// process (a step before this one in the job) gave it already for the refresh token
// rt, and records that it is given now. The record is a note in the access-token
// cache folder named by a keyed hash of rt (cache.FirstNote), never rt itself. When
// the note cannot be read or written, the warning is given: every time, rather than
// never.
func (a *App) ciWarnedBefore(rt string) func() bool {
	return func() bool {
		c, err := a.openCache()
		if err == nil {
			var first bool
			if first, err = c.FirstNote(ciWarningNote, rt); err == nil {
				return !first
			}
		}
		a.logf("CI mode: cannot record that the warning was given, so it is given every time: %v", err)
		return false
	}
}
