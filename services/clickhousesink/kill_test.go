package clickhousesink_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/services/clickhousesink"
	"github.com/mailmon/mailmon/services/internal/chtest"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// The test binary re-executed with these set runs a sink process instead
// of the tests.
const (
	childEnvNATS     = "MAILMON_TEST_SINK_CHILD_NATS"
	childEnvCH       = "MAILMON_TEST_SINK_CHILD_CLICKHOUSE"
	childEnvDatabase = "MAILMON_TEST_SINK_CHILD_DATABASE"
	// childLifetime bounds a child the test fails to stop.
	childLifetime = 3 * time.Minute
)

// runSinkChild runs one sink until SIGTERM (clean drain, exit 0), SIGKILL,
// or childLifetime.
func runSinkChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, childLifetime)
	defer cancel()
	nc, err := nats.Connect(os.Getenv(childEnvNATS), nats.Name("sink-child"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "sink child:", err)
		return 1
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sink child:", err)
		return 1
	}
	s, err := clickhousesink.New(testConfig(), worker.Settings{
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		JetStream:  js,
		ClickHouse: chConfig(os.Getenv(childEnvCH), os.Getenv(childEnvDatabase)),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "sink child:", err)
		return 1
	}
	if err := s.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "sink child:", err)
		return 1
	}
	return 0
}

// sinkProcess is a sink running in a child process.
type sinkProcess struct {
	cmd    *exec.Cmd
	output *lockedBuffer
	exited chan error
}

func startSinkProcess(t *testing.T, natsURL, chAddr, database string) *sinkProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnvNATS+"="+natsURL, childEnvCH+"="+chAddr, childEnvDatabase+"="+database)
	p := &sinkProcess{cmd: cmd, output: &lockedBuffer{}, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.output, p.output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // by its own pid; a no-op once it exited
		<-p.exited
		p.exited <- nil
	})
	return p
}

// A sink process killed with SIGKILL mid-stream, then a new one started on
// the same durables: every event is stored, none twice.
func TestKilledSinkProcessLosesAndDoublesNothing(t *testing.T) {
	ns, _, js := natstest.Start(t)
	// The killed sink's unacked messages come back after AckWait: short
	// here, a minute in production.
	applyTopology(t, js, 5*time.Second)
	conn, database := chtest.NewDatabase(t, shared)
	events := makeEvents(t, 20_000)
	want := perTable(t, events)

	first := startSinkProcess(t, ns.ClientURL(), shared.Addr(), database)
	published := make(chan error, 1)
	go func() { published <- publishAll(js, events) }()

	// Kill once part of the events is stored.
	deadline := time.Now().Add(60 * time.Second)
	var storedAtKill uint64
	for storedAtKill < uint64(len(events)/10) {
		if time.Now().After(deadline) {
			t.Fatalf("the first sink stored %d rows in 60 s; its output:\n%s", storedAtKill, first.output)
		}
		time.Sleep(20 * time.Millisecond)
		storedAtKill = rawRows(t, conn, database)
	}
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-first.exited; err == nil {
		t.Fatal("the killed sink exited cleanly")
	}
	first.exited <- nil
	if storedAtKill >= uint64(len(events)) {
		t.Fatalf("all %d events were stored before the kill; the test needs a kill mid-stream", storedAtKill)
	}

	second := startSinkProcess(t, ns.ClientURL(), shared.Addr(), database)
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	got := waitStored(t, conn, want, 90*time.Second)
	assertDrained(t, js)
	var raw uint64
	for _, c := range got {
		raw += c.raw
	}
	t.Logf("%d rows stored before SIGKILL; %d rows in all for %d events (%d redelivered copies merged by id)",
		storedAtKill, raw, len(events), raw-uint64(len(events)))

	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-second.exited:
		second.exited <- err
		if err != nil {
			t.Errorf("the second sink did not drain cleanly on SIGTERM: %v\n%s", err, second.output)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("the second sink did not stop within 30 s of SIGTERM")
	}
}

// rawRows counts the rows in the database's tables, duplicates included.
func rawRows(t *testing.T, conn driver.Conn, database string) uint64 {
	t.Helper()
	var n uint64
	err := conn.QueryRow(context.Background(),
		"SELECT toUInt64(sum(rows)) FROM system.parts WHERE database = ? AND active", database).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// lockedBuffer collects a child's output from two pipes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
