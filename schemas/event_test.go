package schemas

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestNewIDUniqueAndTimeSortable(t *testing.T) {
	const n = 20000
	before := time.Now().UnixMilli()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = NewID()
	}
	after := time.Now().UnixMilli()

	seen := make(map[string]bool, n)
	for i, id := range ids {
		if seen[id] {
			t.Fatalf("id %s issued twice", id)
		}
		seen[id] = true
		u, err := uuid.Parse(id)
		if err != nil {
			t.Fatalf("id %q: %v", id, err)
		}
		if u.Version() != 7 {
			t.Fatalf("id %s is version %d, want 7", id, u.Version())
		}
		sec, nsec := u.Time().UnixTime()
		ms := sec*1000 + nsec/1e6
		// Ids made faster than 4096 per millisecond borrow from the next
		// millisecond to stay ordered (RFC 9562 section 6.2, method 3).
		if ms < before || ms > after+n/4096+1 {
			t.Fatalf("id %s carries %d ms, generated between %d and %d", id, ms, before, after)
		}
		// Text order is creation order, even within one millisecond.
		if i > 0 && ids[i-1] >= id {
			t.Fatalf("ids out of order: %s then %s", ids[i-1], id)
		}
	}
}

func TestIDsSortAcrossMilliseconds(t *testing.T) {
	first := NewID()
	time.Sleep(3 * time.Millisecond)
	second := NewID()
	if first >= second {
		t.Fatalf("later id %s does not sort after %s", second, first)
	}
}

func TestStamp(t *testing.T) {
	src := Source{Worker: "probe-sender", Host: "mon-1.example.net"}
	zone := time.FixedZone("UTC+2", 2*3600)
	now := time.Date(2025, 3, 14, 11, 26, 53, 589_612_345, zone)
	for _, k := range Kinds() {
		t.Run(k.Type, func(t *testing.T) {
			a, b := k.New(), k.New()
			if err := Stamp(a, src, now); err != nil {
				t.Fatal(err)
			}
			if err := Stamp(b, src, now); err != nil {
				t.Fatal(err)
			}
			h := a.EventHeader()
			if h.Type != k.Type || h.Source != src {
				t.Errorf("stamped type %q source %v", h.Type, h.Source)
			}
			want := time.Date(2025, 3, 14, 9, 26, 53, 589_000_000, time.UTC)
			if !h.Time.Equal(want) || h.Time.Location() != time.UTC {
				t.Errorf("stamped time %v, want %v in UTC", h.Time, want)
			}
			if h.ID == b.EventHeader().ID || h.ID >= b.EventHeader().ID {
				t.Errorf("ids %s then %s: not unique and increasing", h.ID, b.EventHeader().ID)
			}
		})
	}
}

type strayEvent struct{ Header }

func TestStampRejectsUnregistered(t *testing.T) {
	err := Stamp(&strayEvent{}, Source{}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "not a registered event type") {
		t.Fatalf("Stamp of an unregistered type: %v", err)
	}
	if _, err := KindOf(&strayEvent{}); err == nil {
		t.Fatal("KindOf of an unregistered type succeeded")
	}
}

func TestSchemaFile(t *testing.T) {
	tests := []struct {
		kind Kind
		want string
	}{
		{Kind{Type: "mailmon.probe.v1.sent"}, "v1/mailmon.probe.v1.sent.json"},
		{Kind{Type: "mailmon.probe.v2.sent"}, "v2/mailmon.probe.v2.sent.json"},
		{Kind{Type: "not-a-type"}, ""},
	}
	for _, tt := range tests {
		if got := tt.kind.SchemaFile(); got != tt.want {
			t.Errorf("SchemaFile(%q) = %q, want %q", tt.kind.Type, got, tt.want)
		}
	}
}
