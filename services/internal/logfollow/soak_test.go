package logfollow

import (
	"os"
	"strconv"
	"testing"
)

// TestManySeeds runs the rotation simulation over many seeds when
// LOGFOLLOW_SEEDS is set (a soak, not part of the normal run).
func TestManySeeds(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("LOGFOLLOW_SEEDS"))
	if n == 0 {
		t.Skip("set LOGFOLLOW_SEEDS=N to soak the simulation over N seeds")
	}
	for seed := uint64(100); seed < 100+uint64(n); seed++ {
		simulate(t, seed, 3000)
	}
}
