package clickhousesink_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/clickhousesink"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/chtest"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/natstest"
)

// shared is one ClickHouse server for the tests that do not stop it; each
// test has a database of its own.
var shared *chstore.LocalServer

func TestMain(m *testing.M) {
	if os.Getenv(childEnvNATS) != "" {
		os.Exit(runSinkChild())
	}
	os.Exit(chtest.RunWithServer(m, &shared))
}

// 100,000 events of every kind land once each, also when every event is
// published twice.
func TestEveryEventLandsOnce(t *testing.T) {
	const n = integrationEvents
	_, _, js := natstest.Start(t)
	applyTopology(t, js, 0)
	conn, database := chtest.NewDatabase(t, shared)
	events := makeEvents(t, n)
	want := perTable(t, events)

	sink := startSink(t, js, testConfig(), chConfig(shared.Addr(), database))
	start := time.Now()
	publish(t, js, events)
	publish(t, js, events) // the same ids again
	got := waitStored(t, conn, want, 90*time.Second)
	elapsed := time.Since(start)
	assertDrained(t, js)
	t.Logf("%d events (published twice) stored once each in %s: %.0f events/s end to end", n, elapsed.Round(time.Millisecond), n/elapsed.Seconds())

	// The republished copies never reached the sink: JetStream dropped
	// them by message id. (ClickHouse may still hold a few extra raw rows
	// when an insert that timed out on the client was retried after the
	// server had stored it; queries see one row per id either way.)
	var stored uint64
	for _, stream := range sinkStreams(t) {
		st, err := js.Stream(context.Background(), stream)
		if err != nil {
			t.Fatal(err)
		}
		stored += st.CachedInfo().State.Msgs
	}
	if stored != n {
		t.Errorf("the streams hold %d messages, want %d (the republished copies should have been dropped)", stored, n)
	}
	var raw uint64
	for _, c := range got {
		raw += c.raw
	}
	if raw > n {
		t.Logf("%d raw rows for %d events after %v failed inserts (retried; the server may have stored the first try)",
			raw, n, sink.counter(t, "mailmon_clickhouse_sink_insert_errors_total", nil))
	}
	if err := sink.stop(); err != nil {
		t.Errorf("Run returned %v on a clean shutdown, want nil", err)
	}
}

// A message that is not JSON and one that breaks the contract go to the
// dead-letter subject with their reason; the valid messages around them
// are stored.
func TestMalformedMessagesAreDeadLettered(t *testing.T) {
	_, _, js := natstest.Start(t)
	applyTopology(t, js, 0)
	conn, database := chtest.NewDatabase(t, shared)
	before := makeEvents(t, 34)
	after := makeEvents(t, 34)
	sink := startSink(t, js, testConfig(), chConfig(shared.Addr(), database))

	publish(t, js, before)
	alertJSON, err := os.ReadFile("../../schemas/testdata/events/" + schemas.TypeAlertRaised + ".json")
	if err != nil {
		t.Fatal(err)
	}
	invalid := strings.Replace(string(alertJSON), `"id": "0195945e-4193-79bb-b816-6e6ac085790e"`, `"id": "not-a-uuid"`, 1)
	if invalid == string(alertJSON) {
		t.Fatal("example alert changed; update the test's id replacement")
	}
	bad := []struct {
		name, subject, data, reason string
	}{
		{"not json", schemas.SubjectAlertRaised, "this is not json {", "decode:"},
		{"unknown field", schemas.SubjectDeliveryAttempted, `{"type":"mailmon.delivery.v1.attempted","colour":"blue"}`, "decode:"},
		{"another kind's event", schemas.SubjectProbeSent, string(alertJSON), "decode:"},
		{"violates the contract", schemas.SubjectAlertRaised, invalid, "invalid:"},
	}
	for _, b := range bad {
		if _, err := js.Publish(context.Background(), b.subject, []byte(b.data)); err != nil {
			t.Fatal(err)
		}
	}
	publish(t, js, after)
	want := perTable(t, append(append([]schemas.Event{}, before...), after...))
	waitStored(t, conn, want, 30*time.Second)
	assertDrained(t, js)

	dlq, err := js.OrderedConsumer(context.Background(), "DLQ", jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.DeadLetterSubject(clickhousesink.WorkerName)}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := dlq.Fetch(len(bad)+1, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var letters []jetstream.Msg
	for m := range batch.Messages() {
		letters = append(letters, m)
	}
	if len(letters) != len(bad) {
		t.Fatalf("%d dead letters, want %d", len(letters), len(bad))
	}
	for _, b := range bad {
		found := false
		for _, m := range letters {
			if string(m.Data()) != b.data {
				continue
			}
			found = true
			reason := m.Headers().Get(bus.HeaderDeadLetterReason)
			if !strings.HasPrefix(reason, b.reason) {
				t.Errorf("%s: reason %q, want it to start with %q", b.name, reason, b.reason)
			}
			if got := m.Headers().Get(bus.HeaderDeadLetterSubject); got != b.subject {
				t.Errorf("%s: dead letter subject header %q, want %q", b.name, got, b.subject)
			}
		}
		if !found {
			t.Errorf("%s: no dead letter carries the original bytes", b.name)
		}
	}
	if got := sink.counter(t, "mailmon_clickhouse_sink_dead_lettered_total", map[string]string{"reason": "decode"}); got != 3 {
		t.Errorf("dead_lettered_total{reason=decode} = %v, want 3", got)
	}
	if got := sink.counter(t, "mailmon_clickhouse_sink_dead_lettered_total", map[string]string{"reason": "invalid"}); got != 1 {
		t.Errorf("dead_lettered_total{reason=invalid} = %v, want 1", got)
	}
}

// outageFaultTest is the outage the fault test names; the short
// one keeps the ordinary run quick.
const (
	outageShort      = 3 * time.Second
	outageFaultTest  = 30 * time.Second
	outageEventCount = 20_000
)

// ClickHouse stopped mid-stream and restarted on the same data and ports:
// the sink holds the messages, retries, and every event is stored once.
// TestIdleStreamsLeaveRoomForBusyOnes gives the sink room for one batch
// and traffic on one stream only: a puller waiting on an idle stream must
// not sit on the room the busy stream needs.
func TestIdleStreamsLeaveRoomForBusyOnes(t *testing.T) {
	_, _, js := natstest.Start(t)
	applyTopology(t, js, 0)
	conn, database := chtest.NewDatabase(t, shared)
	cfg := testConfig()
	cfg.BatchRows, cfg.MaxPending, cfg.FetchBatch = 40, 40, 40
	startSink(t, js, cfg, chConfig(shared.Addr(), database))

	var deliveries []schemas.Event
	for _, ev := range makeEvents(t, 300*len(schemas.Kinds())) {
		if ev.EventHeader().Type == schemas.TypeDeliveryAttempted {
			deliveries = append(deliveries, ev)
		}
	}
	publish(t, js, deliveries)
	// The deadlock this guards against stores nothing, ever. The wait
	// outlasts AckWait (60 s) so that a message the client dropped as a
	// slow consumer on an overloaded machine (redelivered after AckWait)
	// cannot fail the test: seen once with two test suites on 2 cores.
	waitStored(t, conn, perTable(t, deliveries), 75*time.Second)
	assertDrained(t, js)
}

// TestBatchesWaitForAgeUnlessABurstEnded: a few events wait for
// batch_age (here longer than the test) so they come in one insert, while
// a batch of a tenth of batch_rows or more goes in as soon as its burst is
// over. Stopping the sink flushes what still waits.
func TestBatchesWaitForAgeUnlessABurstEnded(t *testing.T) {
	_, _, js := natstest.Start(t)
	applyTopology(t, js, 0)
	conn, database := chtest.NewDatabase(t, shared)
	cfg := testConfig()
	cfg.BatchAge = config.Duration(10 * time.Minute)
	cfg.BatchRows, cfg.MaxPending = 1000, 1000
	sink := startSink(t, js, cfg, chConfig(shared.Addr(), database))

	var deliveries, alerts []schemas.Event
	for _, ev := range makeEvents(t, 150*len(schemas.Kinds())) {
		switch ev.EventHeader().Type {
		case schemas.TypeDeliveryAttempted:
			deliveries = append(deliveries, ev) // 150: more than a tenth of 1000
		case schemas.TypeAlertRaised:
			if len(alerts) < 5 {
				alerts = append(alerts, ev)
			}
		}
	}
	publish(t, js, append(append([]schemas.Event{}, alerts...), deliveries...))
	want := perTable(t, deliveries)
	waitStored(t, conn, want, 20*time.Second)
	var held uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM alert_raised").Scan(&held); err != nil {
		t.Fatal(err)
	}
	if held != 0 {
		t.Errorf("%d alerts stored before batch_age or a burst's end; want them to wait", held)
	}
	if err := sink.stop(); err != nil {
		t.Fatal(err)
	}
	waitStored(t, conn, perTable(t, append(append([]schemas.Event{}, alerts...), deliveries...)), 10*time.Second)
	assertDrained(t, js)
}

// TestPullsStayWithinTheServersMaxPending runs against a server that
// drops a client once 2 MiB it sent are unread (its max_pending): with
// fetch_bytes small enough the sink never gets there, and every event is
// stored without a redelivery, so nothing waited out AckWait. (Without
// the byte cap, pulls of fetch_batch messages on eight streams overran a
// default server's 64 MB, the connection was dropped and messages came
// back only after AckWait.)
func TestPullsStayWithinTheServersMaxPending(t *testing.T) {
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
		MaxPending: 2 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	applyTopology(t, js, 0)
	conn, database := chtest.NewDatabase(t, shared)
	events := makeEvents(t, 20_000)
	publish(t, js, events)

	cfg := testConfig()
	cfg.FetchBatch, cfg.FetchBytes = 5000, 128<<10 // eleven streams: 1.4 MiB of the 2
	startSink(t, js, cfg, chConfig(shared.Addr(), database))
	// The wait outlasts AckWait, so that on a loaded machine a redelivery
	// fails below, where it is named, instead of here as a bare timeout.
	waitStored(t, conn, perTable(t, events), 150*time.Second)
	assertDrained(t, js)
	for _, stream := range sinkStreams(t) {
		cons, err := js.Consumer(context.Background(), stream, clickhousesink.Durable)
		if err != nil {
			t.Fatal(err)
		}
		// Every delivery advances the consumer sequence; a redelivery
		// does not advance the stream sequence.
		if d := cons.CachedInfo().Delivered; d.Consumer != d.Stream {
			t.Errorf("stream %s: %d deliveries of %d messages; want each delivered once", stream, d.Consumer, d.Stream)
		}
	}
	if n := ns.NumSlowConsumers(); n != 0 {
		t.Errorf("the server dropped %d slow consumers", n)
	}
}

func TestClickHouseOutageLosesNothing(t *testing.T) {
	for _, outage := range []time.Duration{outageShort, outageFaultTest} {
		t.Run(outage.String(), func(t *testing.T) {
			_, _, js := natstest.Start(t)
			applyTopology(t, js, 0)
			srv, conn := chtest.Start(t)
			events := makeEvents(t, outageEventCount)
			half := len(events) / 2
			sink := startSink(t, js, testConfig(), chConfig(srv.Addr(), chtest.Database))

			publish(t, js, events[:half])
			waitStored(t, conn, perTable(t, events[:half]), 30*time.Second)

			tcpPort, httpPort := portOf(t, srv.Addr()), portOf(t, srv.HTTPAddr())
			phase := time.Now()
			if err := srv.Stop(); err != nil {
				t.Fatal(err)
			}
			t.Logf("clickhouse stopped in %s", time.Since(phase).Round(time.Millisecond))
			publish(t, js, events[half:])
			time.Sleep(outage)
			if got := sink.counter(t, "mailmon_clickhouse_sink_insert_errors_total", nil); got == 0 {
				t.Error("no insert failed while ClickHouse was down")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			restarted, err := chstore.StartLocal(ctx, chstore.LocalServerConfig{Dir: srv.Dir(), TCPPort: tcpPort, HTTPPort: httpPort, Binary: os.Getenv(chtest.BinaryEnv)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := restarted.Stop(); err != nil {
					t.Errorf("stop restarted server: %v", err)
				}
			})
			after, err := chtest.Open(ctx, restarted, chtest.Database)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { after.Close() })
			phase = time.Now()
			waitStored(t, after, perTable(t, events), 60*time.Second)
			t.Logf("every event stored %s after the restart", time.Since(phase).Round(time.Millisecond))
			assertDrained(t, js)
			if err := sink.stop(); err != nil {
				t.Errorf("Run returned %v, want nil", err)
			}
		})
	}
}
