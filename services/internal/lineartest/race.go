//go:build race

package lineartest

// raceDetector is true in a test binary built with -race.
const raceDetector = true
