package silence

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/testwait"
)

// startBucket runs a real NATS server with the shipped topology applied,
// so the bucket is the one declared in pipelines/topology.yaml.
func startBucket(t *testing.T) (jetstream.JetStream, jetstream.KeyValue) {
	t.Helper()
	_, _, js := natstest.Start(t)
	top, err := pipelines.Default()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := top.Apply(ctx, js, pipelines.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, Bucket)
	if err != nil {
		t.Fatal(err)
	}
	return js, kv
}

func openStore(t *testing.T, js jetstream.JetStream) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestStoreAddListExpireAndTheWatchersCopy(t *testing.T) {
	js, _ := startBucket(t)
	ctx := context.Background()
	writer := openStore(t, js)
	// A second store stands for the notifier: it learns of silences only
	// through its watch.
	notifier := openStore(t, js)

	gmail, err := writer.Add(ctx, Silence{Matchers: []Matcher{{"rule", "probe_missing"}, {"provider", "gmail"}},
		EndsAt: t0.Add(2 * time.Hour), Comment: "gmail seed maintenance", CreatedBy: "ops"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if gmail.ID == "" || !gmail.StartsAt.Equal(t0) {
		t.Fatalf("stored %+v: want an id and starts_at = now", gmail)
	}
	later, err := writer.Add(ctx, Silence{Matchers: []Matcher{{"source_ip", "192.0.2.*"}},
		StartsAt: t0.Add(time.Hour), EndsAt: t0.Add(3 * time.Hour), Comment: "renumbering", CreatedBy: "ops"}, t0)
	if err != nil {
		t.Fatal(err)
	}

	testwait.Eventually(t, 10*time.Second, "the notifier's copy holds both silences", func() bool { return len(notifier.List()) == 2 })
	a := alert()
	if s, ok := notifier.Silenced(a, t0.Add(time.Minute)); !ok || s.ID != gmail.ID {
		t.Fatalf("at +1m: %+v %v, want the gmail silence", s, ok)
	}
	// At +90m both match; the one that ends last wins.
	if s, ok := notifier.Silenced(a, t0.Add(90*time.Minute)); !ok || s.ID != later.ID {
		t.Errorf("at +90m: %+v %v, want the later-ending silence", s, ok)
	}
	if got := notifier.Active(t0.Add(time.Minute)); len(got) != 1 || got[0].ID != gmail.ID {
		t.Errorf("active at +1m: %+v", got)
	}
	other := alert()
	other.Provider, other.SourceIP = "yahoo", "198.51.100.7"
	if s, ok := notifier.Silenced(other, t0.Add(time.Minute)); ok {
		t.Errorf("an unmatched alert is silenced by %+v", s)
	}

	// Expire the gmail silence at +10m: from then on it mutes nothing.
	expired, err := writer.Expire(ctx, gmail.ID, t0.Add(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !expired.EndsAt.Equal(t0.Add(10 * time.Minute)) {
		t.Errorf("expired ends at %s", expired.EndsAt)
	}
	testwait.Eventually(t, 10*time.Second, "the notifier sees the expiry", func() bool {
		_, ok := notifier.Silenced(a, t0.Add(11*time.Minute))
		return !ok
	})
	if _, err := writer.Expire(ctx, gmail.ID, t0.Add(20*time.Minute)); !errors.Is(err, ErrEnded) {
		t.Errorf("expiring twice: %v, want ErrEnded", err)
	}
	if _, err := writer.Expire(ctx, "no-such-id", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("expiring an unknown id: %v", err)
	}
	if _, err := writer.Expire(ctx, "not a key!", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("expiring an id that is no key: %v", err)
	}
	// Expiring a pending silence ends it before it began.
	if s, err := writer.Expire(ctx, later.ID, t0.Add(30*time.Minute)); err != nil || !s.StartsAt.Equal(s.EndsAt) {
		t.Errorf("expire pending: %+v %v", s, err)
	}

	// A fresh store (a restarted notifier) loads the state from the bucket.
	restarted := openStore(t, js)
	if got := restarted.List(); len(got) != 2 || got[0].State(t0.Add(time.Hour)) != StateExpired {
		t.Errorf("after a restart: %+v", got)
	}
}

func TestStoreAddRefusesWhatCannotBeStored(t *testing.T) {
	js, _ := startBucket(t)
	s := openStore(t, js)
	ctx := context.Background()
	base := Silence{Matchers: []Matcher{{"rule", "probe_missing"}}, EndsAt: t0.Add(time.Hour), Comment: "c", CreatedBy: "ops"}
	for name, change := range map[string]func(*Silence){
		"no matchers":   func(s *Silence) { s.Matchers = nil },
		"already ended": func(s *Silence) { s.StartsAt, s.EndsAt = t0.Add(-2*time.Hour), t0.Add(-time.Hour) },
		"empty span":    func(s *Silence) { s.StartsAt, s.EndsAt = t0.Add(time.Hour), t0.Add(time.Hour) },
		"too long":      func(s *Silence) { s.EndsAt = t0.Add(MaxDuration + time.Minute) },
		"far future": func(s *Silence) {
			s.StartsAt, s.EndsAt = t0.Add(MaxDuration+time.Hour), t0.Add(MaxDuration+2*time.Hour)
		},
	} {
		sil := base
		change(&sil)
		if _, err := s.Add(ctx, sil, t0); err == nil {
			t.Errorf("%s: stored", name)
		}
	}
	if got := s.List(); len(got) != 0 {
		t.Errorf("refused silences were stored: %+v", got)
	}
	dup := base
	dup.ID = "fixed-id"
	if _, err := s.Add(ctx, dup, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(ctx, dup, t0); err == nil {
		t.Error("a second silence with the same id overwrote the first")
	}
}

// Silences that ended more than Retention ago are deleted by the next Add,
// so the bucket stays bounded without a TTL.
func TestStoreAddDeletesLongEndedSilences(t *testing.T) {
	js, kv := startBucket(t)
	s := openStore(t, js)
	ctx := context.Background()
	old, err := s.Add(ctx, Silence{Matchers: []Matcher{{"provider", "gmail"}}, EndsAt: t0.Add(time.Hour), Comment: "old", CreatedBy: "ops"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	later := t0.Add(time.Hour + Retention + time.Minute)
	if _, err := s.Add(ctx, Silence{Matchers: []Matcher{{"provider", "yahoo"}}, EndsAt: later.Add(time.Hour), Comment: "new", CreatedBy: "ops"}, later); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, old.ID); !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrKeyDeleted) {
		t.Errorf("the silence that ended over %s ago is still stored: %v", Retention, err)
	}
	if got := s.List(); len(got) != 1 || got[0].Comment != "new" {
		t.Errorf("listed %+v", got)
	}
}

// Records written around the CLI (any holder of the write grant) are read
// as hostile: a record that does not validate mutes nothing and is counted.
func TestStoreRefusesInvalidRecords(t *testing.T) {
	js, kv := startBucket(t)
	ctx := context.Background()
	good := silenceOf("provider=gmail")
	good.ID = "good"
	if _, err := kv.Put(ctx, "good", good.Marshal()); err != nil {
		t.Fatal(err)
	}
	muteAll := silenceOf()
	muteAll.ID = "mute-all"
	wrongKey := silenceOf("provider=yahoo")
	wrongKey.ID = "elsewhere"
	tooLong := silenceOf("provider=outlook")
	tooLong.ID, tooLong.EndsAt = "too-long", tooLong.StartsAt.Add(365*24*time.Hour)
	for key, val := range map[string][]byte{
		"mute-all":  muteAll.Marshal(),
		"misplaced": wrongKey.Marshal(),
		"too-long":  tooLong.Marshal(),
		"garbage":   []byte("{not json"),
	} {
		if _, err := kv.Put(ctx, key, val); err != nil {
			t.Fatal(err)
		}
	}
	s := openStore(t, js)
	if got := s.List(); len(got) != 1 || got[0].ID != "good" {
		t.Fatalf("held %+v, want only the valid record", got)
	}
	if n, last := s.Refused(); n != 4 || last == "" {
		t.Errorf("refused %d (%q), want 4", n, last)
	}
	a := alert()
	for _, p := range []string{"yahoo", "outlook", "other"} {
		a.Provider = p
		if sil, ok := s.Silenced(a, t0.Add(time.Minute)); ok {
			t.Errorf("provider %s silenced by %+v", p, sil)
		}
	}
	// A valid record replaced by an invalid one stops muting at once.
	if _, err := kv.Put(ctx, "good", []byte(`{"id":"good"}`)); err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, 10*time.Second, "the overwritten record is dropped", func() bool { return len(s.List()) == 0 })
	// Expire clears a refused record by deleting it.
	if _, err := s.Expire(ctx, "garbage", t0); err == nil {
		t.Error("expire of a refused record said nothing")
	}
	if _, err := kv.Get(ctx, "garbage"); !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrKeyDeleted) {
		t.Errorf("refused record not deleted: %v", err)
	}
}

// The watch survives a lost connection: the copy keeps answering, and
// silences added after the reconnect arrive.
func TestStoreWatchSurvivesAReconnect(t *testing.T) {
	_, nc, js := natstest.Start(t)
	top, _ := pipelines.Default()
	ctx := context.Background()
	if err := top.Apply(ctx, js, pipelines.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, js)
	if _, err := s.Add(ctx, Silence{Matchers: []Matcher{{"provider", "gmail"}}, EndsAt: t0.Add(time.Hour), Comment: "c", CreatedBy: "ops"}, t0); err != nil {
		t.Fatal(err)
	}
	if !s.Synced() {
		t.Fatal("not synced after Open")
	}
	kv, _ := js.KeyValue(ctx, Bucket)
	if err := nc.ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	other := silenceOf("provider=yahoo")
	other.ID = "during"
	testwait.Eventually(t, 20*time.Second, "a write after the outage", func() bool {
		_, err := kv.Put(ctx, "during", other.Marshal())
		return err == nil
	})
	testwait.Eventually(t, 20*time.Second, "the copy learns of the new silence", func() bool { return len(s.List()) == 2 })
	if _, ok := s.Silenced(alert(), t0.Add(time.Minute)); !ok {
		t.Error("the silence from before the outage no longer mutes")
	}
}

func TestStampMarksOnlyFiringAlertsASilenceMatches(t *testing.T) {
	js, _ := startBucket(t)
	s := openStore(t, js)
	now := time.Now()
	if _, err := s.Add(context.Background(), Silence{Matchers: []Matcher{{Name: "rule", Value: "probe_*"}},
		EndsAt: now.Add(time.Hour), Comment: "seed maintenance", CreatedBy: "ops"}, now); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rule, status string
		want         bool
	}{
		{"probe_missing_provider", schemas.AlertFiring, true},
		{"probe_missing_provider", schemas.AlertResolved, false}, // a resolution is never held back
		{"blocklist", schemas.AlertFiring, false},
	} {
		a := &schemas.AlertRaised{Rule: tc.rule, Status: tc.status, Severity: schemas.AlertCritical, Subject: "ip:192.0.2.1"}
		s.Stamp(a, now)
		if a.Silenced != tc.want {
			t.Errorf("%s %s: silenced %v, want %v", tc.rule, tc.status, a.Silenced, tc.want)
		}
	}
	var none *Store // the silences could not be read
	a := &schemas.AlertRaised{Rule: "probe_missing_provider", Status: schemas.AlertFiring}
	none.Stamp(a, now)
	if a.Silenced {
		t.Error("a nil store marked an alert")
	}
	// A bucket that is not there: the worker carries on, stamping nothing.
	_, _, bare := natstest.Start(t)
	if st := OpenForStamping(context.Background(), bare, slog.New(slog.DiscardHandler)); st != nil {
		t.Error("OpenForStamping returned a store without the bucket")
	}
}
