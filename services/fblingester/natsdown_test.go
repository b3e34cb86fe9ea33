package fblingester

import (
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
)

// restartableNATS is an embedded server that a test can stop and start
// again on the same port and store, with a client that reconnects.
type restartableNATS struct {
	dir  string
	port int
	srv  *server.Server
	nc   *nats.Conn
	js   jetstream.JetStream
}

func startRestartableNATS(t *testing.T) *restartableNATS {
	t.Helper()
	r := &restartableNATS{dir: t.TempDir()}
	srv, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: r.dir, Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	r.srv = srv
	r.port = srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(func() {
		if r.srv != nil {
			r.srv.Shutdown()
			r.srv.WaitForShutdown()
		}
	})
	r.nc, err = nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.nc.Close)
	if r.js, err = jetstream.New(r.nc); err != nil {
		t.Fatal(err)
	}
	applyTopology(t, r.js)
	return r
}

func (r *restartableNATS) stop() {
	r.srv.Shutdown()
	r.srv.WaitForShutdown()
	r.srv = nil
}

func (r *restartableNATS) start(t *testing.T) {
	t.Helper()
	srv, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: r.dir, Port: r.port})
	if err != nil {
		t.Fatal(err)
	}
	r.srv = srv
	deadline := time.Now().Add(10 * time.Second)
	for !r.nc.IsConnected() {
		if time.Now().After(deadline) {
			t.Fatal("client did not reconnect")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNATSDownAnswers451ThenResendLandsOnce(t *testing.T) {
	n := startRestartableNATS(t)
	cfg := testConfig()
	cfg.PublishTimeout = 3e9
	r := startIngester(t, cfg, n.js)
	report := arfReport("down1", "abuse", "192.0.2.10", sign(t, "acme", "192.0.2.10", "m-down1"))

	n.stop()
	err := send(r.addr, "feedback@arf.mail.yahoo.com", []string{"fbl@sender.example"}, report)
	if code := smtpCode(err); code != 451 {
		t.Fatalf("NATS down: %v (code %d), want 451", err, code)
	}
	// A garbage message cannot be dead-lettered either: 451 too.
	err = send(r.addr, "someone@example.org", []string{"fbl@sender.example"}, []byte("Subject: hi\r\nMessage-ID: <g2@x>\r\n\r\nhello\r\n"))
	if code := smtpCode(err); code != 451 {
		t.Fatalf("dead letter with NATS down: %v, want 451", err)
	}

	n.start(t)
	// The sender retries: accepted now. It retries once more (as if our
	// 250 had been lost): still one event.
	for i := range 2 {
		if err := send(r.addr, "feedback@arf.mail.yahoo.com", []string{"fbl@sender.example"}, report); err != nil {
			t.Fatalf("resend %d after NATS is back: %v", i, err)
		}
	}
	// Give a publish buffered by the client during the outage time to
	// land, so a double would show.
	time.Sleep(500 * time.Millisecond)
	evs := decode[schemas.ComplaintReceived](t, storedMsgs(t, n.js, "COMPLAINT", schemas.SubjectComplaintReceived))
	if len(evs) != 1 {
		t.Fatalf("%d complaints stored, want exactly 1", len(evs))
	}
	if evs[0].Customer != "acme" || evs[0].TrackingID != "m-down1" {
		t.Errorf("stored complaint %+v", evs[0])
	}
	if got := counter(t, r.in.m.smtpRefused.WithLabelValues("retry")); got != 2 {
		t.Errorf("451 answers counted %v, want 2", got)
	}
}
