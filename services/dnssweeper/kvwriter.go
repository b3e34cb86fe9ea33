package dnssweeper

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// kvWriter puts and deletes state records without waiting for each
// acknowledgement: a KV put is a publish on $KV.<bucket>.<key> (what
// jetstream.KeyValue.Put does, one round trip at a time), so a sweep that
// changes many pairs (a new listing of a whole range, a zone outage ending)
// stores them at publish speed. At most max
// puts are unconfirmed; onOK runs, on the caller's goroutine, once a put is
// confirmed, so the caller's cache follows what the bucket holds. It is not
// safe for concurrent use.
type kvWriter struct {
	js      jetstream.JetStream
	prefix  string
	max     int
	timeout time.Duration
	pending []pendingPut
	failed  int
	first   error
}

type pendingPut struct {
	key    string
	future jetstream.PubAckFuture
	onOK   func()
	sent   time.Time
}

func newKVWriter(js jetstream.JetStream, bucket string) *kvWriter {
	return &kvWriter{js: js, prefix: "$KV." + bucket + ".", max: 1024, timeout: 10 * time.Second}
}

// put stores value at key.
func (w *kvWriter) put(ctx context.Context, key string, value []byte, onOK func()) error {
	return w.send(ctx, key, &nats.Msg{Subject: w.prefix + key, Data: value}, onOK)
}

// del deletes key, leaving a delete marker as jetstream.KeyValue.Delete
// does.
func (w *kvWriter) del(ctx context.Context, key string, onOK func()) error {
	msg := &nats.Msg{Subject: w.prefix + key, Header: nats.Header{}}
	msg.Header.Set("KV-Operation", "DEL")
	return w.send(ctx, key, msg, onOK)
}

func (w *kvWriter) send(ctx context.Context, key string, msg *nats.Msg, onOK func()) error {
	for len(w.pending) >= w.max {
		if err := w.waitOldest(ctx); err != nil {
			return err
		}
	}
	for {
		f, err := w.js.PublishMsgAsync(msg)
		if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue
		}
		if err != nil {
			w.record(fmt.Errorf("put %s: %w", key, err))
			return nil
		}
		w.pending = append(w.pending, pendingPut{key: key, future: f, onOK: onOK, sent: time.Now()})
		return nil
	}
}

func (w *kvWriter) record(err error) {
	if w.first == nil {
		w.first = err
	}
	w.failed++
}

func (w *kvWriter) waitOldest(ctx context.Context) error {
	p := w.pending[0]
	timer := time.NewTimer(time.Until(p.sent.Add(w.timeout)))
	defer timer.Stop()
	select {
	case <-p.future.Ok():
		if p.onOK != nil {
			p.onOK()
		}
	case err := <-p.future.Err():
		w.record(fmt.Errorf("put %s: %w", p.key, err))
	case <-timer.C:
		w.record(fmt.Errorf("put %s: no acknowledgement within %s", p.key, w.timeout))
	case <-ctx.Done():
		return ctx.Err()
	}
	w.pending[0] = pendingPut{}
	w.pending = w.pending[1:]
	return nil
}

// flush waits for every put and returns the failures since the last flush.
func (w *kvWriter) flush(ctx context.Context) error {
	for len(w.pending) > 0 {
		if err := w.waitOldest(ctx); err != nil {
			return err
		}
	}
	if w.failed == 0 {
		return nil
	}
	err := fmt.Errorf("%d state writes failed, first: %w", w.failed, w.first)
	w.failed, w.first = 0, nil
	return err
}
