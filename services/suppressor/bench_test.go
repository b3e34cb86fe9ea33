package suppressor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/suppression"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// benchEntries is the bucket size the delivery benchmarks run against.
const benchEntries = 20_000

// benchWorker is a worker (not running) on a bucket of benchEntries
// entries, one per address, under a few customers.
func benchWorker(b *testing.B) (*Worker, jetstream.KeyValue) {
	b.Helper()
	_, _, js := natstest.Start(b)
	top, err := pipelines.Default()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := top.Apply(ctx, js, pipelines.ApplyOptions{}); err != nil {
		b.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, suppression.Bucket)
	if err != nil {
		b.Fatal(err)
	}
	cfg := suppression.DefaultConfig()
	h := cfg.Hasher()
	for i := range benchEntries {
		tg, err := cfg.Normalize.TargetFor(schemas.SuppressCustomerRecipient, fmt.Sprintf("customer-%d", i%20), fmt.Sprintf("user%d@example.org", i))
		if err != nil {
			b.Fatal(err)
		}
		e := suppression.NewEntry(h, tg, schemas.SuppressHardBounce, t0, t0.Add(time.Hour))
		e.AddedID = suppression.AddedID(t0, e.Key, "x")
		if _, err := kv.Put(ctx, e.Key, e.Marshal()); err != nil {
			b.Fatal(err)
		}
	}
	w, err := New(cfg, worker.Settings{JetStream: js, Now: func() time.Time { return t0 }})
	if err != nil {
		b.Fatal(err)
	}
	w.kv = kv
	if w.kvStream, err = js.Stream(ctx, kvStreamName); err != nil {
		b.Fatal(err)
	}
	w.writer = suppression.Writer{KV: kv, Pub: w.pub, Source: w.source}
	return w, kv
}

// BenchmarkSentDelivery measures what a successful delivery to an address
// without entries costs (the common case: listing its keys finds none),
// against one KV get of a missing key as the baseline in the same run.
func BenchmarkSentDelivery(b *testing.B) {
	w, kv := benchWorker(b)
	ctx := context.Background()
	digest := w.rules.hasher.Digest("nobody@example.org")
	b.Run("baseline-kv-get", func(b *testing.B) {
		for b.Loop() {
			if _, err := kv.Get(ctx, "r.all."+digest); err == nil {
				b.Fatal("found")
			}
		}
	})
	b.Run("clear", func(b *testing.B) {
		for b.Loop() {
			if err := w.clear(ctx, Clear{Digest: digest, At: t0, EventID: "d"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSweep measures one pass of the expiry sweep over a bucket of
// benchEntries entries of which none has expired (the usual pass): the
// figure is per pass; divide by benchEntries for the cost per entry.
func BenchmarkSweep(b *testing.B) {
	w, _ := benchWorker(b)
	ctx := context.Background()
	for b.Loop() {
		st, err := w.sweep(ctx)
		if err != nil || st.seen != benchEntries || st.removed != 0 {
			b.Fatalf("sweep: %+v %v", st, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchEntries), "ns/entry")
}

// BenchmarkSentDeliveryParallel is BenchmarkSentDelivery's clear with as
// many at once as the worker runs handlers on DELIVERY: its ns/op is the
// throughput of successful deliveries the suppressor keeps up with.
func BenchmarkSentDeliveryParallel(b *testing.B) {
	w, _ := benchWorker(b)
	ctx := context.Background()
	digest := w.rules.hasher.Digest("nobody@example.org")
	b.SetParallelism(concurrency)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := w.clear(ctx, Clear{Digest: digest, At: t0, EventID: "d"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
