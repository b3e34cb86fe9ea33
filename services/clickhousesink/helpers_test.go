package clickhousesink_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/clickhousesink"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// testConfig batches quickly and retries quickly, so outages and drains
// take seconds in tests.
func testConfig() clickhousesink.Config {
	cfg := clickhousesink.DefaultConfig()
	cfg.BatchAge = config.Duration(200 * time.Millisecond)
	cfg.RetryMin = config.Duration(50 * time.Millisecond)
	cfg.RetryMax = config.Duration(time.Second)
	cfg.ShutdownTimeout = config.Duration(5 * time.Second)
	cfg.LagInterval = config.Duration(200 * time.Millisecond)
	return cfg
}

// chConfig points the sink at a test server and database.
func chConfig(addr, database string) chstore.Config {
	c := chstore.DefaultConfig()
	c.Addr = addr
	c.Database = database
	c.ReadTimeout = config.Duration(5 * time.Second)
	c.DialTimeout = config.Duration(2 * time.Second)
	return c
}

// applyTopology declares every stream and consumer; ackWait, when not
// zero, shortens the sink's consumers' AckWait so a crashed sink's
// messages come back within the test.
func applyTopology(t *testing.T, js jetstream.JetStream, ackWait time.Duration) {
	t.Helper()
	ctx := context.Background()
	top, err := pipelines.Default()
	if err != nil {
		t.Fatal(err)
	}
	if err := top.Apply(ctx, js, pipelines.ApplyOptions{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	if ackWait == 0 {
		return
	}
	for _, c := range top.Consumers {
		if c.Durable != clickhousesink.Durable {
			continue
		}
		cons, err := js.Consumer(ctx, c.Stream, c.Durable)
		if err != nil {
			t.Fatal(err)
		}
		cfg := cons.CachedInfo().Config
		cfg.AckWait = ackWait
		if _, err := js.UpdateConsumer(ctx, c.Stream, cfg); err != nil {
			t.Fatal(err)
		}
	}
}

// runningSink is a sink started in the background.
type runningSink struct {
	cancel  context.CancelFunc
	done    chan error
	metrics *prometheus.Registry
}

func startSink(t *testing.T, js jetstream.JetStream, cfg clickhousesink.Config, ch chstore.Config) *runningSink {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := clickhousesink.New(cfg, worker.Settings{Metrics: reg, JetStream: js, ClickHouse: ch})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningSink{cancel: cancel, done: make(chan error, 1), metrics: reg}
	go func() { r.done <- s.Run(ctx) }()
	t.Cleanup(func() { r.stop() })
	return r
}

// stop cancels the sink and returns what Run returned.
func (r *runningSink) stop() error {
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // later calls see the same result
		return err
	case <-time.After(30 * time.Second):
		return fmt.Errorf("sink did not stop within 30 s")
	}
}

// counter reads one sample of a counter from the sink's registry.
func (r *runningSink) counter(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := r.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue metric
				}
			}
			total += m.GetCounter().GetValue()
		}
	}
	return total
}

// examples reads the example event of every kind.
func examples(t *testing.T) []schemas.Event {
	t.Helper()
	var out []schemas.Event
	for _, k := range schemas.Kinds() {
		data, err := os.ReadFile(filepath.Join("..", "..", "schemas", "testdata", "events", k.Type+".json"))
		if err != nil {
			t.Fatal(err)
		}
		ev, err := schemas.Decode(data)
		if err != nil {
			t.Fatalf("%s: %v", k.Type, err)
		}
		out = append(out, ev)
	}
	return out
}

// makeEvents builds n events spread evenly over every kind, copies of the
// examples with new ids and the current time.
func makeEvents(t *testing.T, n int) []schemas.Event {
	t.Helper()
	ex := examples(t)
	now := time.Now()
	out := make([]schemas.Event, 0, n)
	for i := range n {
		src := ex[i%len(ex)]
		// A shallow copy: slices are shared, and nothing writes to them.
		cp := reflect.New(reflect.TypeOf(src).Elem())
		cp.Elem().Set(reflect.ValueOf(src).Elem())
		ev := cp.Interface().(schemas.Event)
		if err := schemas.Stamp(ev, ev.EventHeader().Source, now); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

// perTable counts the events expected in each table.
func perTable(t *testing.T, events []schemas.Event) map[string]uint64 {
	t.Helper()
	want := map[string]uint64{}
	for _, k := range schemas.Kinds() {
		want[k.Table] = 0
	}
	for _, ev := range events {
		k, err := schemas.KindOf(ev)
		if err != nil {
			t.Fatal(err)
		}
		want[k.Table]++
	}
	return want
}

func publish(t *testing.T, js jetstream.JetStream, events []schemas.Event) {
	t.Helper()
	if err := publishAll(js, events); err != nil {
		t.Fatal(err)
	}
}

// publishAll publishes events and waits for every PubAck; it is safe to
// call from a goroutine other than the test's.
func publishAll(js jetstream.JetStream, events []schemas.Event) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A generous PubAck wait: under -race, on two busy cores, the embedded
	// server answers slowly, and a timeout is not what these tests check.
	pub := bus.NewPublisher(js, bus.PublisherOptions{Worker: "test-publisher", AckTimeout: 30 * time.Second})
	for _, ev := range events {
		if err := pub.PublishAsync(ctx, ev); err != nil {
			return err
		}
	}
	return pub.Flush(ctx)
}

// tableCount is what one table holds: rows after deduplication (FINAL),
// distinct ids, and rows as stored (duplicates not yet merged included).
type tableCount struct {
	final, distinct, raw uint64
}

func countTables(t *testing.T, conn driver.Conn) (map[string]tableCount, error) {
	t.Helper()
	got := map[string]tableCount{}
	for _, k := range schemas.Kinds() {
		var c tableCount
		if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+k.Table+" FINAL").Scan(&c.final); err != nil {
			return nil, err
		}
		if err := conn.QueryRow(context.Background(), "SELECT uniqExact(id), count() FROM "+k.Table).Scan(&c.distinct, &c.raw); err != nil {
			return nil, err
		}
		got[k.Table] = c
	}
	return got, nil
}

// waitStored waits until every table holds its expected events once, and
// fails with the last counts otherwise.
func waitStored(t *testing.T, conn driver.Conn, want map[string]uint64, timeout time.Duration) map[string]tableCount {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, err := countTables(t, conn)
		if err == nil && matches(got, want) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: tables hold %v (err %v), want %v rows each once", timeout, got, err, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func matches(got map[string]tableCount, want map[string]uint64) bool {
	for table, n := range want {
		c := got[table]
		if c.final != n || c.distinct != n {
			return false
		}
	}
	return true
}

// assertDrained checks every sink consumer has nothing pending or unacked.
func assertDrained(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		busy := ""
		for _, stream := range sinkStreams(t) {
			c, err := js.Consumer(context.Background(), stream, clickhousesink.Durable)
			if err != nil {
				t.Fatal(err)
			}
			info, err := c.Info(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if info.NumPending > 0 || info.NumAckPending > 0 {
				busy += fmt.Sprintf(" %s: %d pending, %d unacked;", stream, info.NumPending, info.NumAckPending)
			}
		}
		if busy == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumers not drained:%s", busy)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// sinkStreams are the streams the topology gives a clickhouse-sink consumer.
func sinkStreams(t *testing.T) []string {
	t.Helper()
	top, err := pipelines.Default()
	if err != nil {
		t.Fatal(err)
	}
	var streams []string
	for _, c := range top.Consumers {
		if c.Durable == clickhousesink.Durable {
			streams = append(streams, c.Stream)
		}
	}
	return streams
}
