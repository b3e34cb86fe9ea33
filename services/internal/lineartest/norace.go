//go:build !race

package lineartest

const raceDetector = false
