package suppression

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/enforcement"
	"github.com/mailmon/mailmon/services/internal/natstest"
)

// startBucket runs a real embedded NATS with the topology applied and
// returns a Writer on the suppression bucket.
func startBucket(t *testing.T) (Writer, jetstream.JetStream) {
	t.Helper()
	_, _, js := natstest.Start(t)
	top, err := pipelines.Default()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := top.Apply(ctx, js, pipelines.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, Bucket)
	if err != nil {
		t.Fatal(err)
	}
	pub := bus.NewPublisher(js, bus.PublisherOptions{Worker: "suppressor"})
	return Writer{KV: kv, Pub: pub, Source: schemas.Source{Worker: "suppressor", Host: "test"}}, js
}

// storedEvents returns the events of the SUPPRESSION stream, in order.
func storedEvents(t *testing.T, js jetstream.JetStream) []schemas.Event {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, "SUPPRESSION")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var evs []schemas.Event
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := schemas.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if err := schemas.Validate(ev); err != nil {
			t.Fatalf("event breaks the contract: %v\n%s", err, m.Data)
		}
		evs = append(evs, ev)
	}
	return evs
}

func testEntry(t *testing.T, created time.Time) Entry {
	t.Helper()
	var n Normalizer
	tg, err := n.TargetFor(schemas.SuppressCustomerRecipient, "acme", "gone.user@example.org")
	if err != nil {
		t.Fatal(err)
	}
	e := NewEntry(NewHasher(""), tg, schemas.SuppressHardBounce, created, created.Add(90*24*time.Hour))
	e.BounceCategory, e.Status = "user_unknown", "5.1.1"
	e.SourceEventIDs = []string{"bounce-1"}
	e.AddedID = AddedID(created, e.Key, "bounce-1")
	return e
}

// TestWriterAddIsIdempotent: the same entry added twice (a redelivered
// event) is one entry and one suppression.added event; an entry stored
// before a crash that lost its event gets the event on the retry.
func TestWriterAddIsIdempotent(t *testing.T) {
	w, js := startBucket(t)
	ctx := context.Background()
	created := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	e := testEntry(t, created)

	for i := range 2 {
		added, err := w.Add(ctx, e, nil)
		if err != nil || !added {
			t.Fatalf("add #%d: added=%v err=%v", i+1, added, err)
		}
	}
	got, rev, found, err := Get(ctx, w.KV, e.Key)
	if err != nil || !found {
		t.Fatalf("entry not stored: found=%v err=%v", found, err)
	}
	if got.AddedID != e.AddedID || rev != 1 {
		t.Errorf("stored entry %s at revision %d, want %s at 1 (written once)", got.AddedID, rev, e.AddedID)
	}
	evs := storedEvents(t, js)
	if len(evs) != 1 {
		t.Fatalf("%d events, want one suppression.added", len(evs))
	}
	ev, ok := evs[0].(*schemas.SuppressionAdded)
	if !ok || ev.ID != e.AddedID || ev.Key != e.Key || !ev.Time.Equal(created) || ev.Recipient != "gone.user@example.org" {
		t.Fatalf("event %+v does not match entry %+v", evs[0], e)
	}

	// Another entry for the same key, not to replace the stored one.
	other := testEntry(t, created.Add(time.Hour))
	if added, err := w.Add(ctx, other, func(Entry) bool { return false }); err != nil || added {
		t.Fatalf("add of another entry that may not replace: added=%v err=%v", added, err)
	}
	if n := len(storedEvents(t, js)); n != 1 {
		t.Fatalf("%d events after a refused add, want 1", n)
	}

	// A crash between the bucket write and the event: the retry publishes.
	lost := testEntry(t, created)
	lost.Key = KeyOf(schemas.SuppressCustomerRecipient, "beta", lost.RecipientHash)
	lost.Customer = "beta"
	lost.AddedID = AddedID(created, lost.Key, "bounce-1")
	if _, err := Put(ctx, w.KV, lost, 0); err != nil {
		t.Fatal(err)
	}
	if added, err := w.Add(ctx, lost, nil); err != nil || !added {
		t.Fatalf("retry after a lost event: added=%v err=%v", added, err)
	}
	evs = storedEvents(t, js)
	if len(evs) != 2 || evs[1].EventHeader().ID != lost.AddedID {
		t.Fatalf("after the retry: %d events, want the lost entry's event second", len(evs))
	}
}

// TestWriterRemoveIsIdempotent: removing twice removes once, with one
// suppression.removed event; a retry after a crash between the event and
// the delete publishes the same event (dropped as a duplicate) and then
// deletes.
func TestWriterRemoveIsIdempotent(t *testing.T) {
	w, js := startBucket(t)
	ctx := context.Background()
	created := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	e := testEntry(t, created)
	if _, err := w.Add(ctx, e, nil); err != nil {
		t.Fatal(err)
	}
	at := created.Add(2 * time.Hour)
	for i, want := range []bool{true, false} {
		removed, ok, err := w.Remove(ctx, e.Key, schemas.UnsuppressDelivered, "delivery-9", at, []string{"delivery-9"}, "", "", nil)
		if err != nil || ok != want {
			t.Fatalf("remove #%d: ok=%v err=%v, want ok=%v", i+1, ok, err, want)
		}
		if ok && removed.AddedID != e.AddedID {
			t.Fatalf("removed %s, want %s", removed.AddedID, e.AddedID)
		}
	}
	if _, _, found, err := Get(ctx, w.KV, e.Key); err != nil || found {
		t.Fatalf("entry still there: found=%v err=%v", found, err)
	}
	evs := storedEvents(t, js)
	if len(evs) != 2 {
		t.Fatalf("%d events, want added and removed", len(evs))
	}
	rm, ok := evs[1].(*schemas.SuppressionRemoved)
	if !ok || rm.Cause != schemas.UnsuppressDelivered || rm.AddedID != e.AddedID || rm.HeldMs != (2*time.Hour).Milliseconds() ||
		len(rm.SourceEventIDs) != 1 || rm.SourceEventIDs[0] != "delivery-9" || !rm.Time.Equal(at) {
		t.Fatalf("removed event %+v", evs[1])
	}

	// A keep rule that refuses leaves the entry and publishes nothing.
	e2 := testEntry(t, created.Add(time.Minute))
	e2.AddedID = AddedID(e2.Created, e2.Key, "bounce-2")
	if _, err := w.Add(ctx, e2, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := w.Remove(ctx, e2.Key, schemas.UnsuppressDelivered, "delivery-10", at, nil, "", "", func(Entry) bool { return true }); err != nil || ok {
		t.Fatalf("remove refused by keep: ok=%v err=%v", ok, err)
	}

	// The crash: the removed event went out, the delete did not.
	ev := e2.Removed(schemas.UnsuppressExpired, at, nil, "", "")
	if err := w.publish(ctx, ev, enforcement.StableID(at, "suppression-removed", e2.Key, e2.AddedID, schemas.UnsuppressExpired, "x"), at); err != nil {
		t.Fatal(err)
	}
	before := len(storedEvents(t, js))
	if _, ok, err := w.Remove(ctx, e2.Key, schemas.UnsuppressExpired, "x", at, nil, "", "", nil); err != nil || !ok {
		t.Fatalf("retry of the remove: ok=%v err=%v", ok, err)
	}
	if n := len(storedEvents(t, js)); n != before {
		t.Fatalf("the retried remove published a second event: %d events, want %d", n, before)
	}
	if _, _, found, _ := Get(ctx, w.KV, e2.Key); found {
		t.Fatal("entry still there after the retried remove")
	}
}

// TestWriterRejectsAnEntryWithoutIDs: an entry must carry its key and
// added id; otherwise nothing is written.
func TestWriterRejectsAnEntryWithoutIDs(t *testing.T) {
	w, js := startBucket(t)
	e := testEntry(t, time.Now())
	e.AddedID = ""
	if _, err := w.Add(context.Background(), e, nil); err == nil {
		t.Fatal("an entry without an added id was accepted")
	}
	if n := len(storedEvents(t, js)); n != 0 {
		t.Fatalf("%d events published", n)
	}
}
