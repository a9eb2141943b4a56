//go:build race

package securestore

// raceEnabled: under the race detector each write costs several times more,
// so the kill test runs fewer writers.
const raceEnabled = true
