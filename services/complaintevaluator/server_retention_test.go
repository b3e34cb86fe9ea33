package complaintevaluator_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/services/complaintevaluator"
)

// A server whose DELIVERY stream keeps less than the declared topology (a
// topology this release did not apply) is refused at start: the rebuild
// would judge a 7 d window over truncated deliveries.
func TestServerRetentionShorterThanAWindowIsRefused(t *testing.T) {
	js, _ := newNATS(t)
	ctx := context.Background()
	stream, err := js.Stream(ctx, "DELIVERY")
	if err != nil {
		t.Fatal(err)
	}
	sc := stream.CachedInfo().Config
	sc.MaxAge = 7 * 24 * time.Hour // what DELIVERY kept before it was raised to 8 d
	if _, err := js.UpdateStream(ctx, sc); err != nil {
		t.Fatal(err)
	}
	cfg := complaintevaluator.DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the default config is refused on its own: %v", err)
	}
	ev, err := complaintevaluator.New(cfg, settings(t, js, complaintevaluator.WorkerName))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = ev.Run(ctx)
	if err == nil {
		t.Fatal("the evaluator ran on a DELIVERY stream that keeps 7d, with a 7d window")
	}
	for _, want := range []string{"windows[2]", "DELIVERY", "max_age 7d", "declares 8d"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "windows[1]") {
		t.Errorf("error %q also refuses the 24h window, which fits", err)
	}
}
