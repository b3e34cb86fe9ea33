package consoletest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/enforcement"
	"github.com/mailmon/mailmon/services/internal/silence"
)

// DNSBLBucket is the dns-sweeper's state bucket the console reads the
// current listings from.
const DNSBLBucket = "dnsbl_state"

// SeedKV writes the NATS KV state that goes with Seed's events: the
// decision in force in the enforcement bucket, the current listing in
// the dnsbl_state bucket and the silences in alert_silences (with an
// expired one), as the complaint-evaluator, the dns-sweeper and `mailmon
// silence` write them. Buckets that do not exist are created (a test server has
// no topology applied).
func SeedKV(ctx context.Context, js jetstream.JetStream, t Truth) error {
	enf, err := bucket(ctx, js, enforcement.Bucket)
	if err != nil {
		return err
	}
	d := t.Decision
	subject := enforcement.CustomerProvider(Customer, Provider)
	rec := enforcement.Record{
		DecisionID:     d.ID,
		Action:         d.Action,
		DecisionTarget: subject.Target(),
		DecisionTerm:   schemas.DecisionTerm{Rule: d.Rule, Offence: 1, Until: d.Until, DurationMs: d.Until.Sub(d.Time).Milliseconds()},
		DecidedAt:      d.Time,
		Transport:      "ndr",
		Summary:        t.Firing[0].Summary,
		Severity:       schemas.AlertCritical,
		Source:         schemas.Source{Worker: "complaint-evaluator", Host: "seed"},
		Evidence: schemas.DecisionEvidence{Complaints: d.Complaints, Delivered: d.Delivered, Rate: d.Rate, Threshold: d.Threshold,
			SampleComplaintIDs: []string{"seed-complaint-1", "seed-complaint-2"}},
	}
	if _, err := enf.Put(ctx, subject.Key(), rec.Marshal()); err != nil {
		return fmt.Errorf("consoletest: put %s: %w", subject.Key(), err)
	}

	state, err := bucket(ctx, js, DNSBLBucket)
	if err != nil {
		return err
	}
	for _, l := range t.Listings {
		v, _ := json.Marshal(map[string]any{
			"target": l.Target, "kind": l.TargetKind, "zone": l.Zone, "state": "listed",
			"codes": []string{"127.0.0.2"}, "txt": l.TXT, "listed_since": l.Since, "changed": l.Since,
		})
		key := "ip/" + l.Target + "/" + l.Zone
		if _, err := state.Put(ctx, key, v); err != nil {
			return fmt.Errorf("consoletest: put %s: %w", key, err)
		}
	}
	silences, err := bucket(ctx, js, silence.Bucket)
	if err != nil {
		return err
	}
	stored := []silence.Silence{{ID: "seed-silence-expired", Matchers: []silence.Matcher{{Name: "rule", Value: "dnsbl_listed"}},
		StartsAt: t.Now.Add(-3 * time.Hour), EndsAt: t.Now.Add(-time.Hour), Comment: "ended an hour ago", CreatedBy: "ops"}}
	for _, sil := range t.Silences {
		rec := silence.Silence{ID: sil.ID, StartsAt: sil.StartsAt, EndsAt: sil.EndsAt, Comment: sil.Comment, CreatedBy: sil.CreatedBy}
		for _, m := range sil.Matchers {
			mt, err := silence.ParseMatcher(m)
			if err != nil {
				return fmt.Errorf("consoletest: silence %s: %w", sil.ID, err)
			}
			rec.Matchers = append(rec.Matchers, mt)
		}
		stored = append(stored, rec)
	}
	for _, sil := range stored {
		if err := sil.Validate(); err != nil {
			return fmt.Errorf("consoletest: silence %s: %w", sil.ID, err)
		}
		if _, err := silences.Put(ctx, sil.ID, sil.Marshal()); err != nil {
			return fmt.Errorf("consoletest: put silence %s: %w", sil.ID, err)
		}
	}
	return nil
}

func bucket(ctx context.Context, js jetstream.JetStream, name string) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name})
	}
	if err != nil {
		return nil, fmt.Errorf("consoletest: bucket %s: %w", name, err)
	}
	return kv, nil
}
