package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// asyncPublisher publishes with JetStream's async publish at full speed and
// keeps the messages JetStream did not ack, so finish can publish them
// again; the message id makes a second copy harmless.
type asyncPublisher struct {
	js jetstream.JetStream

	mu     sync.Mutex
	failed []*nats.Msg
}

func newAsyncPublisher(nc *nats.Conn, maxPending int) (*asyncPublisher, error) {
	p := &asyncPublisher{}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(maxPending),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, _ error) {
			p.mu.Lock()
			p.failed = append(p.failed, m)
			p.mu.Unlock()
		}))
	if err != nil {
		return nil, err
	}
	p.js = js
	return p, nil
}

// publish publishes one event asynchronously, waiting while too many are
// pending.
func (p *asyncPublisher) publish(ctx context.Context, subject string, data []byte, id string) error {
	for {
		_, err := p.js.PublishAsync(subject, data, jetstream.WithMsgID(id), jetstream.WithStallWait(time.Second))
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			if err != nil {
				return fmt.Errorf("publish %s: %w", id, err)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// finish waits for every pending publish and publishes again, synchronously,
// those JetStream did not ack. It returns how many that were.
func (p *asyncPublisher) finish(ctx context.Context) (int, error) {
	select {
	case <-p.js.PublishAsyncComplete():
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	p.mu.Lock()
	failed := p.failed
	p.failed = nil
	p.mu.Unlock()
	for _, m := range failed {
		var err error
		for range 5 {
			if _, err = p.js.PublishMsg(ctx, m); err == nil {
				break
			}
		}
		if err != nil {
			return len(failed), fmt.Errorf("republish %s: %w", m.Header.Get(jetstream.MsgIDHeader), err)
		}
	}
	return len(failed), nil
}
