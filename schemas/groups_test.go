package schemas

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FlatInline and FlatGrouped declare the same event twice: once with every
// field written out, once with runs of them taken from field groups, one
// group nested in another. Every representation must treat them alike.

// FlatInline is a test event.
type FlatInline struct {
	Header
	// Kind is a label with a closed set of values.
	Kind string `json:"kind" ch:"lc" enum:"a,b"`
	// Names names the figures.
	Names []string `json:"names,omitempty" parallel:"figures"`
	// Values holds the value of each name.
	Values []string `json:"values,omitempty" parallel:"figures"`
	// At is an optional time.
	At time.Time `json:"at,omitzero"`
	// Middle sits between the groups.
	Middle int32 `json:"middle"`
	// Flag is a boolean column.
	Flag bool `json:"flag"`
	// Count is a count.
	Count uint16 `json:"count,omitempty"`
}

// FlatGrouped is a test event.
type FlatGrouped struct {
	Header
	TestOuterGroup
	// Middle sits between the groups.
	Middle int32 `json:"middle"`
	TestTailGroup
}

// TestOuterGroup is a field group with a group inside.
type TestOuterGroup struct {
	// Kind is a label with a closed set of values.
	Kind string `json:"kind" ch:"lc" enum:"a,b"`
	TestFiguresGroup
	// At is an optional time.
	At time.Time `json:"at,omitzero"`
}

// TestFiguresGroup is a nested field group of parallel arrays.
type TestFiguresGroup struct {
	// Names names the figures.
	Names []string `json:"names,omitempty" parallel:"figures"`
	// Values holds the value of each name.
	Values []string `json:"values,omitempty" parallel:"figures"`
}

// TestTailGroup is a field group at the end of an event.
type TestTailGroup struct {
	// Flag is a boolean column.
	Flag bool `json:"flag"`
	// Count is a count.
	Count uint16 `json:"count,omitempty"`
}

// TestMethodGroup would promote its MarshalJSON to any event embedding it.
type TestMethodGroup struct {
	// Note is a note.
	Note string `json:"note"`
}

func (TestMethodGroup) MarshalJSON() ([]byte, error) { return []byte(`"x"`), nil }

// TestHeaderGroup wrongly carries the Header of its event.
type TestHeaderGroup struct {
	Header
}

// TestProviderGroup declares a name that DecisionTarget declares too.
type TestProviderGroup struct {
	// Provider is a provider.
	Provider string `json:"provider"`
}

func TestFieldGroupFlattens(t *testing.T) {
	header := Header{
		ID:     "0195945e-4185-702d-9d6b-6b4661d6f9a0",
		Type:   "mailmon.test.v1.flat",
		Time:   time.Date(2025, 3, 14, 11, 16, 0, 5e6, time.UTC),
		Source: Source{Worker: "test", Host: "localhost"},
	}
	at := time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC)
	inline := &FlatInline{Header: header, Kind: "a", Names: []string{"n"}, Values: []string{"v"}, At: at, Middle: -3, Flag: true, Count: 7}
	grouped := &FlatGrouped{
		Header: header,
		TestOuterGroup: TestOuterGroup{
			Kind:             "a",
			TestFiguresGroup: TestFiguresGroup{Names: []string{"n"}, Values: []string{"v"}},
			At:               at,
		},
		Middle:        -3,
		TestTailGroup: TestTailGroup{Flag: true, Count: 7},
	}
	inlineKind := Kind{Type: header.Type, Subject: "mailmon.test.flat", Table: "flat", goType: reflect.TypeFor[FlatInline]()}
	groupedKind := inlineKind
	groupedKind.goType = reflect.TypeFor[FlatGrouped]()

	t.Run("columns", func(t *testing.T) {
		want, got := Columns(inlineKind), Columns(groupedKind)
		if len(want) == 0 || !reflect.DeepEqual(got, want) {
			t.Errorf("grouped columns %v, inline %v", got, want)
		}
		if a, b := InsertQuery(groupedKind), InsertQuery(inlineKind); a != b {
			t.Errorf("grouped insert %q, inline %q", a, b)
		}
		if got, want := Row(grouped), Row(inline); !reflect.DeepEqual(got, want) {
			t.Errorf("grouped row %#v, inline %#v", got, want)
		}
	})

	t.Run("json", func(t *testing.T) {
		want, err := json.Marshal(inline)
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(grouped)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("grouped JSON %s, inline %s", got, want)
		}
		// The inline document decodes strictly into the grouped type and
		// fills the groups' fields.
		var back FlatGrouped
		dec := json.NewDecoder(bytes.NewReader(want))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&back, grouped) {
			t.Errorf("decoded %+v, want %+v", back, *grouped)
		}
	})

	t.Run("schema", func(t *testing.T) {
		docs := loadDocs(t, "groups_test.go")
		want, err := jsonSchema(inlineKind, docs)
		if err != nil {
			t.Fatal(err)
		}
		got, err := jsonSchema(groupedKind, docs)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("grouped schema\n%s\ninline schema\n%s", got, want)
		}
		// The description comes from the group's declaration: proof that the
		// comparison above did not pass on two empty descriptions.
		if !strings.Contains(string(got), `"description": "names names the figures. Parallel to values`) {
			t.Errorf("schema lacks the group field's description:\n%s", got)
		}
	})
}

func TestFieldGroupRejects(t *testing.T) {
	tests := []struct {
		name string
		typ  reflect.Type
		want string
	}{
		{"Source embedded", reflect.TypeFor[struct {
			Header
			Source
		}](), "Source is a nested object"},
		{"pointer to a group", reflect.TypeFor[struct {
			Header
			*TestTailGroup
		}](), "only structs can be embedded"},
		{"tagged group", reflect.TypeFor[struct {
			Header
			TestTailGroup `json:"tail"`
		}](), "takes no tags"},
		{"group with methods", reflect.TypeFor[struct {
			Header
			TestMethodGroup
		}](), "has no methods"},
		{"Header inside a group", reflect.TypeFor[struct {
			TestHeaderGroup
		}](), "has no methods"},
		{"group from another package", reflect.TypeFor[struct {
			Header
			time.Time
		}](), "declared in package schemas"},
		// go vet rejects a struct literal that repeats a json name, so
		// these are built at run time.
		{"name in two groups", reflect.StructOf([]reflect.StructField{
			{Name: "DecisionTarget", Type: reflect.TypeFor[DecisionTarget](), Anonymous: true},
			{Name: "TestProviderGroup", Type: reflect.TypeFor[TestProviderGroup](), Anonymous: true},
		}), `share the json name "provider"`},
		{"group name repeated inline", reflect.StructOf([]reflect.StructField{
			{Name: "TestTailGroup", Type: reflect.TypeFor[TestTailGroup](), Anonymous: true},
			{Name: "Count", Type: reflect.TypeFor[uint16](), Tag: `json:"count"`},
		}), `share the json name "count"`},
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
