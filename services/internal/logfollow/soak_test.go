package logfollow

import (
	"os"
	"strconv"
	"testing"
)

// TestManySeeds runs longer rotation simulations than
// TestRandomRotationsAndCrashes over seeds of their own: two in the normal
// run, LOGFOLLOW_SEEDS=N for a soak over N.
func TestManySeeds(t *testing.T) {
	n := 2
	if v := os.Getenv("LOGFOLLOW_SEEDS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("LOGFOLLOW_SEEDS=%q: want a positive number of seeds", v)
		}
	}
	for seed := uint64(100); seed < 100+uint64(n); seed++ {
		simulate(t, seed, 3000)
	}
}
