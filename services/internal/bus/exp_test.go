package bus_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/services/internal/natstest"
)

func TestExpPhases(t *testing.T) {
	_, _, js := natstest.Start(t)
	n := 300000
	cons := freshStream(nil, js, "EXP", "exp.x")
	data := make([]byte, 300)
	begin := time.Now()
	for i := range n {
		if _, err := js.PublishAsync("exp.x", data, jetstream.WithMsgID(string(rune(i))+time.Now().String()), jetstream.WithStallWait(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	pub := time.Since(begin)
	var c atomic.Int64
	done := make(chan struct{})
	begin = time.Now()
	cc, _ := cons.Consume(func(m jetstream.Msg) { m.Ack(); if c.Add(1) == int64(n) { close(done) } })
	<-done
	cc.Stop()
	t.Logf("publish %.0f/s consume %.0f/s", float64(n)/pub.Seconds(), float64(n)/time.Since(begin).Seconds())
}
