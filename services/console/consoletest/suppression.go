package consoletest

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/suppression"
)

// The suppression list's seeded addresses.
const (
	// SuppressedAddress is on acme's list (a hard bounce in force) and in
	// the bucket, under the hasher SeedSuppression is given.
	SuppressedAddress = "gone@example.org"
	// GlobalAddress is on the global list (unsubscribe) and in the bucket.
	GlobalAddress = "left@example.net"
	// ClearedAddress bounced for acme, then a delivery cleared it.
	ClearedAddress = "back@example.org"
)

// SuppressionCount is an entry count by customer and reason.
type SuppressionCount struct {
	Customer string `json:"customer"`
	Reason   string `json:"reason"`
	Entries  uint64 `json:"entries"`
}

// SuppressionTruth is what /suppression must show for the seeded events
// with the default range and no filter.
type SuppressionTruth struct {
	// InForce is by customer then reason.
	InForce []SuppressionCount
	// Added by reason and Removed by cause, in the default range.
	Added, Removed map[string]uint64
	// LatestAdded are the recipients (or digests) of the range's
	// additions, newest first; LatestRemoved of its removals.
	LatestAdded, LatestRemoved []string
	// SuppressedKey is the bucket key of SuppressedAddress's acme entry.
	SuppressedKey string
}

type seededSuppression struct {
	customer, scope, reason, addr string
	created, expires              time.Time
	removedAt                     time.Time // zero: not removed
	cause                         string
	inBucket                      bool
}

// SeedSuppression migrates the database, inserts suppression_added and suppression_removed events
// (one addition twice, as a re-delivered copy) and puts the entries in
// force it names into the suppression bucket, keyed by h (with a key, no
// address is kept in clear):
//
//   - acme: SuppressedAddress, a hard bounce an hour ago, for 90 days (in
//     the bucket); another hard bounce 8 days ago, before the range, in
//     force; ClearedAddress, a hard bounce 3 hours ago removed 2 hours
//     ago (delivered); a hard bounce 2 hours ago that expired an hour ago
//     (not yet swept); a complaint 30 minutes ago, never expiring, whose
//     event arrived twice.
//   - beta: a manual entry, released 10 minutes ago; another manual
//     entry in force.
//   - global: GlobalAddress, unsubscribed 20 minutes ago (in the bucket).
func SeedSuppression(ctx context.Context, conn driver.Conn, js jetstream.JetStream, h suppression.Hasher, now time.Time) (SuppressionTruth, error) {
	now = now.UTC().Truncate(time.Second)
	var database string
	if err := conn.QueryRow(ctx, "SELECT currentDatabase()").Scan(&database); err != nil {
		return SuppressionTruth{}, fmt.Errorf("consoletest: %w", err)
	}
	if _, err := chstore.Migrate(ctx, conn, database, schemas.Migrations); err != nil {
		return SuppressionTruth{}, fmt.Errorf("consoletest: migrate: %w", err)
	}
	entries := []seededSuppression{
		{customer: Customer, scope: schemas.SuppressCustomerRecipient, reason: schemas.SuppressHardBounce, addr: SuppressedAddress,
			created: now.Add(-time.Hour), expires: now.Add(-time.Hour + 90*24*time.Hour), inBucket: true},
		{customer: Customer, scope: schemas.SuppressCustomerRecipient, reason: schemas.SuppressHardBounce, addr: "old@example.org",
			created: now.Add(-8 * 24 * time.Hour), expires: now.Add(82 * 24 * time.Hour)},
		{customer: Customer, scope: schemas.SuppressCustomerRecipient, reason: schemas.SuppressHardBounce, addr: ClearedAddress,
			created: now.Add(-3 * time.Hour), removedAt: now.Add(-2 * time.Hour), cause: schemas.UnsuppressDelivered},
		{customer: Customer, scope: schemas.SuppressCustomerRecipient, reason: schemas.SuppressHardBounce, addr: "brief@example.org",
			created: now.Add(-2 * time.Hour), expires: now.Add(-time.Hour)},
		{customer: Customer, scope: schemas.SuppressCustomerRecipient, reason: schemas.SuppressComplaint, addr: "angry@example.com",
			created: now.Add(-30 * time.Minute)},
		{customer: CleanCustomer, scope: schemas.SuppressCustomerRecipient, reason: schemas.SuppressManual, addr: "released@example.com",
			created: now.Add(-5 * time.Hour), removedAt: now.Add(-10 * time.Minute), cause: schemas.UnsuppressReleased},
		{customer: CleanCustomer, scope: schemas.SuppressCustomerRecipient, reason: schemas.SuppressManual, addr: "kept@example.com",
			created: now.Add(-4 * time.Hour)},
		{scope: schemas.SuppressGlobalRecipient, reason: schemas.SuppressUnsubscribe, addr: GlobalAddress,
			created: now.Add(-20 * time.Minute), inBucket: true},
	}
	var n suppression.Normalizer
	src := schemas.Source{Worker: "suppressor", Host: "seed"}
	truth := SuppressionTruth{Added: map[string]uint64{}, Removed: map[string]uint64{}}
	inForce := map[[2]string]uint64{}
	var addedRows, removedRows [][]any
	type change struct {
		at  time.Time
		who string
	}
	var latestAdded, latestRemoved []change
	kv, err := bucket(ctx, js, suppression.Bucket)
	if err != nil {
		return truth, err
	}
	from := now.Add(-DefaultRange).Truncate(5 * time.Minute)
	for i, se := range entries {
		t, err := n.TargetFor(se.scope, se.customer, se.addr)
		if err != nil {
			return truth, fmt.Errorf("consoletest: %w", err)
		}
		e := suppression.NewEntry(h, t, se.reason, se.created, se.expires)
		e.AddedID = suppression.AddedID(se.created, e.Key, "seed", fmt.Sprint(i))
		if e.Reason == schemas.SuppressHardBounce {
			e.BounceCategory, e.Status, e.Reply = "user_unknown", "5.1.1", "550 5.1.1 no such user"
			e.SourceEventIDs = []string{fmt.Sprintf("bounce-seed-%d", i)}
		}
		added := e.Added()
		if err := schemas.Stamp(added, src, se.created); err != nil {
			return truth, err
		}
		added.ID = e.AddedID
		row := schemas.Row(added)
		addedRows = append(addedRows, row)
		if se.reason == schemas.SuppressComplaint {
			addedRows = append(addedRows, row) // a re-delivered copy
		}
		who := e.Recipient
		if who == "" {
			who = e.RecipientHash
		}
		if !se.created.Before(from) {
			truth.Added[se.reason]++
			latestAdded = append(latestAdded, change{se.created, who})
		}
		if !se.removedAt.IsZero() {
			removed := e.Removed(se.cause, se.removedAt, nil, "", "")
			if err := schemas.Stamp(removed, src, se.removedAt); err != nil {
				return truth, err
			}
			removedRows = append(removedRows, schemas.Row(removed))
			if !se.removedAt.Before(from) {
				truth.Removed[se.cause]++
				latestRemoved = append(latestRemoved, change{se.removedAt, who})
			}
			continue
		}
		if e.Active(now) {
			inForce[[2]string{se.customer, se.reason}]++
		}
		if se.inBucket {
			if _, err := suppression.Put(ctx, kv, e, 0); err != nil {
				return truth, err
			}
			if se.customer == Customer {
				truth.SuppressedKey = e.Key
			}
		}
	}
	if err := insert(ctx, conn, schemas.InsertQuery(suppressionKind(schemas.TypeSuppressionAdded)), addedRows); err != nil {
		return truth, err
	}
	if err := insert(ctx, conn, schemas.InsertQuery(suppressionKind(schemas.TypeSuppressionRemoved)), removedRows); err != nil {
		return truth, err
	}
	for k, c := range inForce {
		truth.InForce = append(truth.InForce, SuppressionCount{Customer: k[0], Reason: k[1], Entries: c})
	}
	sort.Slice(truth.InForce, func(i, j int) bool {
		a, b := truth.InForce[i], truth.InForce[j]
		return a.Customer < b.Customer || a.Customer == b.Customer && a.Reason < b.Reason
	})
	for _, l := range []struct {
		from []change
		to   *[]string
	}{{latestAdded, &truth.LatestAdded}, {latestRemoved, &truth.LatestRemoved}} {
		sort.Slice(l.from, func(i, j int) bool { return l.from[i].at.After(l.from[j].at) })
		for _, c := range l.from {
			*l.to = append(*l.to, c.who)
		}
	}
	return truth, nil
}

func suppressionKind(typ string) schemas.Kind {
	for _, k := range schemas.Kinds() {
		if k.Type == typ {
			return k
		}
	}
	panic("consoletest: no kind " + typ)
}
