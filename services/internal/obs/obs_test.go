package obs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestLoggerFormatsAndLevels(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(LogConfig{Level: "warn", Format: "json"}, &buf)
	log.Info("hidden")
	log.Warn("shown", "worker", "probe-sender")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("want one JSON record, got %q: %v", buf.String(), err)
	}
	if rec["msg"] != "shown" || rec["worker"] != "probe-sender" {
		t.Errorf("record = %v", rec)
	}
	buf.Reset()
	NewLogger(LogConfig{Level: "debug", Format: "text"}, &buf).Debug("text line")
	if !strings.Contains(buf.String(), `msg="text line"`) {
		t.Errorf("text output = %q", buf.String())
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultLogConfig().Validate(); err != nil {
		t.Error(err)
	}
	err := LogConfig{Level: "loud", Format: "xml"}.Validate()
	if err == nil || !strings.Contains(err.Error(), "level") || !strings.Contains(err.Error(), "format") {
		t.Errorf("Validate = %v, want both level and format named", err)
	}
	if err := (HTTPConfig{Addr: "nope"}).Validate(); err == nil {
		t.Error("bad addr accepted")
	}
}

func TestHTTPEndpoints(t *testing.T) {
	reg := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "mailmon_test_things_total", Help: "things"})
	reg.MustRegister(c)
	c.Add(3)
	health := NewHealth()
	var connected atomic.Bool
	health.Register("nats", func(context.Context) error {
		if !connected.Load() {
			return errors.New("not connected")
		}
		return nil
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	root := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "root "+r.URL.Path) })
	go func() { served <- Serve(ctx, ln, Handler(reg, health, false, root)) }()
	base := "http://" + ln.Addr().String()

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "nats: not connected") {
		t.Errorf("/readyz before ready = %d %q", code, body)
	}
	connected.Store(true)
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz when ready = %d", code)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "mailmon_test_things_total 3") {
		t.Errorf("/metrics = %d, missing counter", code)
	}
	if code, body := get("/probes"); code != 200 || body != "root /probes" {
		t.Errorf("/probes = %d %q, want the root handler's answer", code, body)
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve returned %v on shutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}
