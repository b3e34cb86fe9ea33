package schemas

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Source names the process that produced an event.
type Source struct {
	// Worker is the kebab-case worker name, e.g. "probe-sender".
	Worker string `json:"worker" ch:"lc"`
	// Host is the host name of the process.
	Host string `json:"host" ch:"lc"`
}

// Header holds the fields every event carries. Each event type embeds it,
// so they appear at the top level of the JSON document.
type Header struct {
	// ID is unique and sorts by creation time (a UUIDv7 in text form). It is
	// also the NATS message id, so JetStream drops a republished copy.
	ID string `json:"id"`
	// Type is the versioned type string, e.g. "mailmon.probe.v1.sent"; it
	// says which schema the rest of the document follows.
	Type string `json:"type" ch:"lc"`
	// Time is when the event happened (not when it was published), in UTC
	// with millisecond precision. ClickHouse keeps whole seconds; the id
	// orders events within a second.
	Time time.Time `json:"time"`
	// Source is the worker and host that produced the event.
	Source Source `json:"source"`
}

// EventHeader gives access to the common fields of any event.
func (h *Header) EventHeader() *Header { return h }

// Event is implemented by a pointer to every event type.
type Event interface {
	EventHeader() *Header
}

// Kind ties one event type to its place in the contract: the type string,
// the subject it is published on and the ClickHouse table it lands in. The
// JSON Schema lives at jsonschema/<SchemaFile()> (jsonschema/v1/<Type>.json
// for v1) and an example at testdata/events/<Type>.json.
type Kind struct {
	Type    string
	Subject string
	Table   string
	goType  reflect.Type
}

// New returns a new zero event of this kind.
func (k Kind) New() Event { return reflect.New(k.goType).Interface().(Event) }

// GoType is the Go struct type of this kind's events.
func (k Kind) GoType() reflect.Type { return k.goType }

// SchemaFile is the path of this kind's JSON Schema inside JSONSchemas,
// e.g. "v1/mailmon.probe.v1.sent.json"; the directory is the type's version.
func (k Kind) SchemaFile() string {
	parts := strings.Split(k.Type, ".")
	if len(parts) != 4 {
		return ""
	}
	return parts[2] + "/" + k.Type + ".json"
}

// NewID returns a new event id: a UUIDv7, whose text form sorts by time.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// Stamp fills the common fields of ev: a new id, its type string, the time
// (UTC, truncated to the millisecond the JSON carries) and the source.
func Stamp(ev Event, src Source, now time.Time) error {
	k, err := KindOf(ev)
	if err != nil {
		return err
	}
	h := ev.EventHeader()
	h.ID = NewID()
	h.Type = k.Type
	h.Time = now.UTC().Truncate(time.Millisecond)
	h.Source = src
	return nil
}

// KindOf returns the kind of an event value.
func KindOf(ev Event) (Kind, error) {
	t := reflect.TypeOf(ev)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	k, ok := byGoType[t]
	if !ok {
		return Kind{}, fmt.Errorf("schemas: %v is not a registered event type", t)
	}
	return k, nil
}

// KindByType returns the kind registered for a type string.
func KindByType(typ string) (Kind, bool) {
	k, ok := byType[typ]
	return k, ok
}

// KindBySubject returns the kind whose events are published on subject.
func KindBySubject(subject string) (Kind, bool) {
	k, ok := bySubject[subject]
	return k, ok
}

// Kinds lists every registered kind, in registration order.
func Kinds() []Kind { return append([]Kind(nil), kinds...) }

var (
	kinds    []Kind
	byType   = map[string]Kind{}
	byGoType = map[reflect.Type]Kind{}
	// bySubject has one kind per subject: register refuses a second.
	bySubject = map[string]Kind{}
)

// register adds an event kind; E is the event struct type. It panics on a
// duplicate or on a field the contract cannot carry, because the registry is
// fixed at compile time and any test run finds the mistake.
func register[E any](typ, subject, table string) {
	t := reflect.TypeFor[E]()
	if _, ok := reflect.New(t).Interface().(Event); !ok {
		panic(fmt.Sprintf("schemas: %v does not embed Header", t))
	}
	if _, dup := byType[typ]; dup {
		panic("schemas: duplicate type " + typ)
	}
	if _, dup := bySubject[subject]; dup {
		panic("schemas: duplicate subject " + subject)
	}
	if _, dup := byGoType[t]; dup {
		panic(fmt.Sprintf("schemas: %v registered twice", t))
	}
	p, err := buildPlan(t)
	if err != nil {
		panic(err.Error())
	}
	plans[t] = p
	k := Kind{Type: typ, Subject: subject, Table: table, goType: t}
	kinds = append(kinds, k)
	byType[typ] = k
	byGoType[t] = k
	bySubject[subject] = k
}
