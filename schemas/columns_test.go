package schemas

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// everyType covers each Go type the mapping supports.
type everyType struct {
	Header
	S    string    `json:"s"`
	LC   string    `json:"lc" ch:"lc"`
	B    bool      `json:"b"`
	I8   int8      `json:"i8"`
	I16  int16     `json:"i16"`
	I32  int32     `json:"i32"`
	I64  int64     `json:"i64"`
	U8   uint8     `json:"u8"`
	U16  uint16    `json:"u16"`
	U32  uint32    `json:"u32"`
	U64  uint64    `json:"u64"`
	F32  float32   `json:"f32"`
	F64  float64   `json:"f64"`
	T    time.Time `json:"t,omitzero"`
	SS   []string  `json:"ss,omitempty"`
	SLC  []string  `json:"slc,omitempty" ch:"lc"`
	SU32 []uint32  `json:"su32,omitempty"`
	SI64 []int64   `json:"si64,omitempty"`
}

func TestColumnMapping(t *testing.T) {
	p, err := buildPlan(reflect.TypeFor[everyType]())
	if err != nil {
		t.Fatal(err)
	}
	want := []Column{
		{"id", "String"},
		{"type", "LowCardinality(String)"},
		{"time", "DateTime('UTC')"},
		{"source_worker", "LowCardinality(String)"},
		{"source_host", "LowCardinality(String)"},
		{"s", "String"},
		{"lc", "LowCardinality(String)"},
		{"b", "UInt8"},
		{"i8", "Int8"},
		{"i16", "Int16"},
		{"i32", "Int32"},
		{"i64", "Int64"},
		{"u8", "UInt8"},
		{"u16", "UInt16"},
		{"u32", "UInt32"},
		{"u64", "UInt64"},
		{"f32", "Float32"},
		{"f64", "Float64"},
		{"t", "DateTime('UTC')"},
		{"ss", "Array(String)"},
		{"slc", "Array(LowCardinality(String))"},
		{"su32", "Array(UInt32)"},
		{"si64", "Array(Int64)"},
	}
	if diff := diffColumns(p.columns, want); diff != "" {
		t.Fatal(diff)
	}
}

func TestColumnMappingRejects(t *testing.T) {
	type status string
	tests := []struct {
		name string
		typ  reflect.Type
		want string
	}{
		{"map", reflect.TypeFor[struct {
			Header
			M map[string]string `json:"m,omitempty"`
		}](), "unsupported type"},
		{"pointer", reflect.TypeFor[struct {
			Header
			P *string `json:"p,omitempty"`
		}](), "unsupported type"},
		{"nested struct", reflect.TypeFor[struct {
			Header
			N struct{ A string } `json:"n"`
		}](), "unsupported type"},
		{"named type", reflect.TypeFor[struct {
			Header
			S status `json:"s"`
		}](), "named type"},
		{"slice without omitempty", reflect.TypeFor[struct {
			Header
			S []string `json:"s"`
		}](), "slices need omitempty"},
		{"optional time with omitempty", reflect.TypeFor[struct {
			Header
			T time.Time `json:"t,omitempty"`
		}](), "needs omitzero"},
		{"lc on a number", reflect.TypeFor[struct {
			Header
			N int32 `json:"n" ch:"lc"`
		}](), "strings only"},
		{"unknown ch tag", reflect.TypeFor[struct {
			Header
			S string `json:"s" ch:"codec"`
		}](), "unknown ch tag"},
		{"enum on a number", reflect.TypeFor[struct {
			Header
			N int32 `json:"n" enum:"1,2"`
		}](), "only strings can be enums"},
		{"parallel scalar", reflect.TypeFor[struct {
			Header
			S string `json:"s" parallel:"x"`
		}](), "only slices can be parallel"},
		{"no json name", reflect.TypeFor[struct {
			Header
			S string
		}](), "needs a json name"},
		{"slice of times", reflect.TypeFor[struct {
			Header
			T []time.Time `json:"t,omitempty"`
		}](), "unsupported slice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := buildPlan(tt.typ)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("buildPlan error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestRowConversions(t *testing.T) {
	ev := &ProbeReceived{
		Header:    Header{ID: NewID(), Type: TypeProbeReceived, Time: time.Date(2025, 3, 14, 9, 27, 41, 207e6, time.FixedZone("CET", 3600))},
		Deleted:   true,
		LatencyMs: -250, // the provider's clock was behind ours
	}
	row := Row(ev)
	cols := Columns(mustKind(t, TypeProbeReceived))
	value := func(name string) any {
		i := slices.IndexFunc(cols, func(c Column) bool { return c.Name == name })
		if i < 0 {
			t.Fatalf("no column %s", name)
		}
		return row[i]
	}
	if got := value("deleted"); got != uint8(1) {
		t.Errorf("deleted = %#v, want uint8(1)", got)
	}
	if got := value("latency_ms"); got != int64(-250) {
		t.Errorf("latency_ms = %#v", got)
	}
	if got := value("time").(time.Time); got.Location() != time.UTC || !got.Equal(ev.Time) {
		t.Errorf("time = %v, want %v in UTC", got, ev.Time)
	}
	// A zero time cannot be stored as such; it becomes the smallest DateTime.
	if got := value("sent_at").(time.Time); !got.Equal(time.Unix(0, 0)) {
		t.Errorf("zero sent_at = %v, want 1970-01-01", got)
	}
	// clickhouse-go needs a slice, not a nil interface or nil pointer.
	if got, ok := value("dkim_domains").([]string); !ok || got == nil || len(got) != 0 {
		t.Errorf("nil dkim_domains = %#v, want an empty []string", value("dkim_domains"))
	}
}

func TestRowBadInput(t *testing.T) {
	var nilReceived *ProbeReceived
	if Row(nil) != nil || Row(nilReceived) != nil {
		t.Error("Row of a nil event is not nil")
	}
	if Columns(Kind{}) != nil || InsertQuery(Kind{}) != "" {
		t.Error("the zero Kind has columns")
	}
}

func TestInsertQuery(t *testing.T) {
	k := mustKind(t, TypeDNSBLChecked)
	want := "INSERT INTO dnsbl_checked (id, type, time, source_worker, source_host, sweep_id, resolver, started_at, duration_ms, " +
		"targets, queries, listed, newly_listed, delisted, errors, zone_names, zone_states, zone_listed, zone_errors, zone_queries)"
	if got := InsertQuery(k); got != want {
		t.Errorf("InsertQuery =\n %s\nwant\n %s", got, want)
	}
}

// TestEnumConstants keeps the exported vocabulary constants and the enum
// tags that the schemas and Validate enforce in step.
func TestEnumConstants(t *testing.T) {
	tests := []struct {
		kind   string
		column string
		want   []string
	}{
		{TypeProbeSent, "submission", []string{SubmissionSMTP, SubmissionSendmail}},
		{TypeProbeSent, "outcome", []string{OutcomeAccepted, OutcomeTempfail, OutcomeRefused, OutcomeError}},
		{TypeProbeReceived, "placement", []string{PlacementInbox, PlacementSpam, PlacementOther}},
		{TypeProbeLate, "placement", []string{PlacementInbox, PlacementSpam, PlacementOther}},
		{TypeProbeReceived, "protocol", []string{ProtocolIMAP, ProtocolPOP3}},
		{TypeProbeReceived, "arrival_source", []string{ArrivalInternalDate, ArrivalReceived}},
		{TypeDeliveryAttempted, "status", []string{StatusSent, StatusDeferred, StatusBounced, StatusExpired, StatusRejected}},
		{TypeDeliveryAttempted, "tracking_status", []string{TrackingValid, TrackingMissing, TrackingInvalid}},
		{TypeDeliveryAttempted, "mta", []string{MTAPostfix, MTAExim}},
		{TypeComplaintReceived, "trace_method", []string{TraceTrackingHeader, TraceDKIM, TraceMessageID, TraceSourceIP, TraceNone}},
		{TypeBounceReceived, "received_via", []string{ReceivedViaSMTP, ReceivedViaIMAP, ReceivedViaFile}},
		{TypeDNSBLListed, "target_kind", []string{TargetIP, TargetDomain}},
		{TypeDNSBLListed, "previous_state", []string{StateClean, StateUnknown}},
		{TypeDNSBLChecked, "zone_states", []string{ZoneOK, ZoneUnknown}},
		{TypeDNSAudit, "finding_severities", []string{SeverityOK, SeverityInfo, SeverityWarning, SeverityCritical}},
		{TypeDNSAudit, "worst_severity", []string{SeverityOK, SeverityInfo, SeverityWarning, SeverityCritical}},
		{TypeDecisionCutoff, "scope", []string{ScopeCustomer, ScopeSourceIP, ScopeCustomerProvider}},
		{TypeDecisionRelease, "action", []string{ActionCutoff, ActionReroute}},
		{TypeAlertRaised, "status", []string{AlertFiring, AlertResolved}},
		{TypeAlertRaised, "severity", []string{AlertInfo, AlertWarning, AlertCritical}},
	}
	for _, tt := range tests {
		k := mustKind(t, tt.kind)
		var enum []string
		for _, f := range plans[k.GoType()].fields {
			if f.Column == tt.column {
				enum = f.Enum
			}
		}
		if !slices.Equal(enum, tt.want) {
			t.Errorf("%s %s: enum tag %v, constants %v", tt.kind, tt.column, enum, tt.want)
		}
	}
}

func mustKind(t testing.TB, typ string) Kind {
	t.Helper()
	k, ok := KindByType(typ)
	if !ok {
		t.Fatalf("no kind %s", typ)
	}
	return k
}

// BenchmarkRow measures the sink's per-event cost of turning a delivery
// event (the widest, most frequent kind) into a batch row, in a new slice
// and in a reused one (what the sink does).
func BenchmarkRow(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join(examplesDir, TypeDeliveryAttempted+".json"))
	if err != nil {
		b.Fatal(err)
	}
	ev, err := Decode(raw)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Row", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if len(Row(ev)) == 0 {
				b.Fatal("empty row")
			}
		}
	})
	b.Run("AppendRow", func(b *testing.B) {
		var row []any
		b.ReportAllocs()
		for b.Loop() {
			if row = AppendRow(row, ev); len(row) == 0 {
				b.Fatal("empty row")
			}
		}
	})
}

func BenchmarkDecodeValidateRow(b *testing.B) {
	var docs [][]byte
	for _, k := range Kinds() {
		data, err := os.ReadFile(filepath.Join("testdata", "events", k.Type+".json"))
		if err != nil {
			b.Fatal(err)
		}
		docs = append(docs, data)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ev, err := Decode(docs[i%len(docs)])
		if err != nil {
			b.Fatal(err)
		}
		if err := Validate(ev); err != nil {
			b.Fatal(err)
		}
		_ = Row(ev)
	}
}

func TestAppendRowReusesTheSlice(t *testing.T) {
	var events []Event
	for _, typ := range []string{TypeDeliveryAttempted, TypeAlertRaised} {
		raw, err := os.ReadFile(filepath.Join(examplesDir, typ+".json"))
		if err != nil {
			t.Fatal(err)
		}
		ev, err := Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	var row []any
	for _, ev := range events {
		row = AppendRow(row, ev)
		if want := Row(ev); !reflect.DeepEqual(row, want) {
			t.Errorf("AppendRow(%T) = %v, want Row's %v", ev, row, want)
		}
	}
	big := AppendRow(nil, events[0])
	if again := AppendRow(big, events[1]); len(again) != len(Row(events[1])) || &again[0] != &big[0] {
		t.Errorf("AppendRow did not reuse a large enough slice")
	}
	if AppendRow(row, nil) != nil {
		t.Error("AppendRow of a nil event is not nil")
	}
}
