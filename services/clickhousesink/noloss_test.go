package clickhousesink_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/clickhousesink"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/chtest"
	"github.com/mailmon/mailmon/services/internal/natstest"
)

// A row ClickHouse itself refuses on every insert (here: a materialised
// column that throws for one subject) ends in the dead-letter stream with
// the server's reason, and every other row of its batch is stored.
func TestRowTheServerRefusesIsDeadLetteredAndTheRestStored(t *testing.T) {
	_, _, js := natstest.Start(t)
	applyTopology(t, js, 0)
	conn, database := chtest.NewDatabase(t, shared)
	cfg := testConfig()
	cfg.RejectAfter = 2
	sink := startSink(t, js, cfg, chConfig(shared.Addr(), database))
	// The sink's migrations create the table; the throwing column goes in
	// before any alert is published.
	waitTable(t, conn, "alert_raised")
	if err := conn.Exec(context.Background(), "ALTER TABLE alert_raised ADD COLUMN poison UInt8 MATERIALIZED throwIf(subject = 'customer:poison')"); err != nil {
		t.Fatalf("adding the throwing column: %v", err)
	}

	var alerts []schemas.Event
	var poisonID string
	for len(alerts) < 40 {
		for _, ev := range makeEvents(t, len(schemas.Kinds())) {
			a, ok := ev.(*schemas.AlertRaised)
			if !ok {
				continue
			}
			if len(alerts) == 17 {
				a.Subject = "customer:poison"
				poisonID = a.ID
			}
			alerts = append(alerts, a)
		}
	}
	publish(t, js, alerts)

	letters := waitDeadLetters(t, js, 1, 60*time.Second)
	reason := letters[0].Headers().Get(bus.HeaderDeadLetterReason)
	if !strings.HasPrefix(reason, "rejected: alert_raised") || !strings.Contains(reason, "throwIf") {
		t.Errorf("reason %q, want it to start with \"rejected: alert_raised\" and quote the server's error", reason)
	}
	if got := letters[0].Headers().Get(bus.HeaderDeadLetterMsgID); got != poisonID {
		t.Errorf("dead letter of event %s, want the refused one, %s", got, poisonID)
	}
	var stored uint64
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := conn.QueryRow(context.Background(), "SELECT uniqExact(id) FROM alert_raised").Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored == uint64(len(alerts)-1) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if stored != uint64(len(alerts)-1) {
		t.Errorf("alert_raised holds %d alerts, want every one but the refused one (%d)", stored, len(alerts)-1)
	}
	assertDrained(t, js)
	if got := sink.counter(t, "mailmon_clickhouse_sink_dead_lettered_total", map[string]string{"reason": "rejected"}); got != 1 {
		t.Errorf("dead_lettered_total{reason=rejected} = %v, want 1", got)
	}
}

// Messages handed back many times (naks at shutdown, AckWait expiring
// after a crash) are still stored: JetStream's delivery count says nothing
// about whether a message can be stored, and past a delivery limit it
// would be dropped with neither a row nor a dead letter.
func TestManyRedeliveriesStillStore(t *testing.T) {
	_, _, js := natstest.Start(t)
	applyTopology(t, js, time.Second)
	conn, database := chtest.NewDatabase(t, shared)
	events := makeEvents(t, 3*len(schemas.Kinds()))
	publish(t, js, events)

	// Other copies of the sink took every message and gave it back: 22
	// shutdowns (nak) and 3 crashes (AckWait expired).
	for _, stream := range sinkStreams(t) {
		st, err := js.Stream(context.Background(), stream)
		if err != nil {
			t.Fatal(err)
		}
		want := int(st.CachedInfo().State.Msgs)
		if want == 0 {
			continue
		}
		cons, err := js.Consumer(context.Background(), stream, clickhousesink.Durable)
		if err != nil {
			t.Fatal(err)
		}
		for round := range 25 {
			// Returns once every message of the stream is delivered again:
			// at once after a nak, after AckWait once none was sent.
			batch, err := cons.Fetch(want, jetstream.FetchMaxWait(10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			got := 0
			for m := range batch.Messages() {
				got++
				if round < 22 {
					if err := m.Nak(); err != nil {
						t.Fatal(err)
					}
				}
			}
			if got != want {
				// A consumer with a delivery limit stops here: the
				// messages past it are never delivered again.
				t.Logf("%s round %d: %d messages delivered, want %d", stream, round, got, want)
				break
			}
		}
	}

	startSink(t, js, testConfig(), chConfig(shared.Addr(), database))
	waitStored(t, conn, perTable(t, events), 60*time.Second)
	assertDrained(t, js)
}

// A dead letter that cannot be stored when the sink decides to write it
// (the DLQ stream is gone) is retried in place, not handed back: here the
// message is on its 20th delivery, the old limit, where a nak would have
// dropped it. Once the stream is back the dead letter is stored, from the
// same delivery.
func TestFailedDeadLetterIsRetriedInPlace(t *testing.T) {
	_, _, js := natstest.Start(t)
	applyTopology(t, js, 0)
	_, database := chtest.NewDatabase(t, shared)
	const data = "this is not json {"
	if _, err := js.Publish(context.Background(), schemas.SubjectAlertRaised, []byte(data)); err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(context.Background(), "ALERT", clickhousesink.Durable)
	if err != nil {
		t.Fatal(err)
	}
	for range 19 {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(3*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if err := m.Nak(); err != nil {
				t.Fatal(err)
			}
		}
		if n != 1 {
			t.Fatalf("fetched %d messages, want the one published", n)
		}
	}
	if err := js.DeleteStream(context.Background(), "DLQ"); err != nil {
		t.Fatal(err)
	}

	sink := startSink(t, js, testConfig(), chConfig(shared.Addr(), database))
	// Wait for the sink to fail at least once (bounded: on a sink that
	// never says so, the final check decides).
	deadline := time.Now().Add(15 * time.Second)
	for sink.counter(t, "mailmon_clickhouse_sink_dead_letter_errors_total", nil) < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	applyTopology(t, js, 0) // the DLQ stream is back

	letters := waitDeadLetters(t, js, 1, 30*time.Second)
	if string(letters[0].Data()) != data {
		t.Errorf("dead letter holds %q, want the original bytes", letters[0].Data())
	}
	if got := letters[0].Headers().Get(bus.HeaderDeadLetterDeliveries); got != "20" {
		t.Errorf("dead letter written on delivery %s, want 20: the copy is retried in place, not after a redelivery", got)
	}
	assertDrained(t, js)
}

// A consumer with a delivery limit is refused: past it a message would be
// dropped with neither a row nor a dead letter.
func TestLimitedConsumerIsRefused(t *testing.T) {
	_, _, js := natstest.Start(t)
	applyTopology(t, js, 0)
	_, database := chtest.NewDatabase(t, shared)
	cons, err := js.Consumer(context.Background(), "DELIVERY", clickhousesink.Durable)
	if err != nil {
		t.Fatal(err)
	}
	cfg := cons.CachedInfo().Config
	cfg.MaxDeliver = 20
	if _, err := js.UpdateConsumer(context.Background(), "DELIVERY", cfg); err != nil {
		t.Fatal(err)
	}
	sink := startSink(t, js, testConfig(), chConfig(shared.Addr(), database))
	select {
	case err := <-sink.done:
		if err == nil || !strings.Contains(err.Error(), "max_deliver 20") || !strings.Contains(err.Error(), "DELIVERY") {
			t.Fatalf("Run returned %v, want a refusal naming DELIVERY's max_deliver 20", err)
		}
		sink.done <- err
	case <-time.After(30 * time.Second):
		t.Fatal("the sink runs on a consumer with max_deliver 20")
	}
}

// waitTable waits for the sink's migrations to create table.
func waitTable(t *testing.T, conn driver.Conn, table string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n uint64
		err := conn.QueryRow(context.Background(), "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = ?", table).Scan(&n)
		if err == nil && n == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("table %s not created within 30 s (err %v)", table, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitDeadLetters waits for at least n dead letters of the sink and
// returns them.
func waitDeadLetters(t *testing.T, js jetstream.JetStream, n int, timeout time.Duration) []jetstream.Msg {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var letters []jetstream.Msg
		dlq, err := js.OrderedConsumer(context.Background(), "DLQ", jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{bus.DeadLetterSubject(clickhousesink.WorkerName)}})
		if err == nil {
			batch, err := dlq.Fetch(n+10, jetstream.FetchMaxWait(500*time.Millisecond))
			if err == nil {
				for m := range batch.Messages() {
					letters = append(letters, m)
				}
			}
		}
		if len(letters) >= n {
			return letters
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %d dead letters, want %d", timeout, len(letters), n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
