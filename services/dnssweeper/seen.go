package dnssweeper

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/mailmon/mailmon/services/internal/bus"
)

// seenRefresh is how old a seen IP's last_seen may get before a delivery
// from it is written again; between refreshes deliveries cost no write.
const seenRefresh = 24 * time.Hour

// consumeDeliveries learns sending IPs from delivery events until ctx ends.
func (s *Sweeper) consumeDeliveries(ctx context.Context) error {
	return bus.Consume(ctx, s.set.JetStream, bus.ConsumeOptions{
		Worker:      WorkerName,
		Stream:      DeliveryStream,
		Durable:     Durable,
		Concurrency: 4,
		Publisher:   s.pub,
		Logger:      s.log,
		Metrics:     s.set.Metrics,
	}, s.handleDelivery)
}

// handleDelivery records the source_ip of one delivery event. Events
// without one (a NOQUEUE reject, a local delivery) are acknowledged as
// they are; a message that is not JSON is dead-lettered.
func (s *Sweeper) handleDelivery(ctx context.Context, m *bus.Msg) error {
	var ev struct {
		Type     string `json:"type"`
		SourceIP string `json:"source_ip"`
	}
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		return bus.Permanent(fmt.Errorf("delivery event is not JSON: %w", err))
	}
	if ev.SourceIP == "" {
		return nil
	}
	addr, err := netip.ParseAddr(ev.SourceIP)
	if err != nil || addr.Zone() != "" || !addr.Unmap().IsGlobalUnicast() || addr.Unmap().IsPrivate() {
		return nil // not an address a blocklist could list
	}
	return s.noteSeen(ctx, addr.Unmap(), time.Now())
}

// noteSeen stores ip as seen at now, unless it was stored less than
// seenRefresh ago.
func (s *Sweeper) noteSeen(ctx context.Context, ip netip.Addr, now time.Time) error {
	key := seenKey(ip.String())
	s.seenMu.Lock()
	prev := s.seen[key]
	s.seenMu.Unlock()
	if prev != nil && now.Sub(prev.LastSeen) < seenRefresh {
		return nil
	}
	rec := &seenRecord{IP: ip.String(), FirstSeen: now.UTC(), LastSeen: now.UTC()}
	if prev != nil {
		rec.FirstSeen = prev.FirstSeen
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, key, data); err != nil {
		return fmt.Errorf("store seen IP %s: %w", ip, err)
	}
	s.seenMu.Lock()
	s.seen[key] = rec
	n := len(s.seen)
	s.seenMu.Unlock()
	s.metrics.seenIPs.Set(float64(n))
	if prev == nil {
		s.log.Info("new sending IP seen in deliveries; swept from the next sweep", "ip", ip.String())
	}
	return nil
}
