package chstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/chtest"
)

// examplesDir holds one example document per event type.
const examplesDir = "../../../schemas/testdata/events"

// TestSchemaContractOnRealServer applies the project's own migrations to a
// real ClickHouse and checks the tables against the Go contract: every
// kind's table exists with exactly schemas.Columns (names, types, order),
// and its example event inserted twice with schemas.Row reads back as one
// row (the table deduplicates by id) with the same values (times to the
// second, which is what a DateTime column keeps).
func TestSchemaContractOnRealServer(t *testing.T) {
	ctx := context.Background()
	conn, database := chtest.NewDatabase(t, server)

	applied, err := chstore.Migrate(ctx, conn, database, schemas.Migrations)
	if err != nil {
		t.Fatalf("Migrate(schemas.Migrations): %v", err)
	}
	if len(applied) < len(schemas.Kinds()) {
		t.Errorf("applied %d migrations for %d kinds: %v", len(applied), len(schemas.Kinds()), applied)
	}
	if again, err := chstore.Migrate(ctx, conn, database, schemas.Migrations); err != nil || len(again) != 0 {
		t.Fatalf("second Migrate = %v, %v; want nothing to do", again, err)
	}

	for _, k := range schemas.Kinds() {
		t.Run(k.Type, func(t *testing.T) {
			want := schemas.Columns(k)
			if len(want) == 0 {
				t.Fatalf("schemas.Columns(%s) is empty", k.Type)
			}
			got := tableColumns(t, conn, database, k.Table)
			if len(got) == 0 {
				t.Fatalf("table %s does not exist after the migrations", k.Table)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("table %s columns differ from schemas.Columns:\n%s", k.Table, columnDiff(got, want))
			}

			ev := readExample(t, k)
			names := make([]string, len(want))
			for i, c := range want {
				names[i] = c.Name
			}
			insert := "INSERT INTO " + k.Table + " (" + strings.Join(names, ", ") + ")"
			for range 2 { // a redelivered copy must merge away
				batch, err := conn.PrepareBatch(ctx, insert)
				if err != nil {
					t.Fatal(err)
				}
				if err := batch.Append(schemas.Row(ev)...); err != nil {
					t.Fatalf("Append(Row(example)): %v", err)
				}
				if err := batch.Send(); err != nil {
					t.Fatalf("Send: %v", err)
				}
			}

			var count uint64
			if err := conn.QueryRow(ctx, "SELECT count() FROM "+k.Table+" FINAL").Scan(&count); err != nil {
				t.Fatal(err)
			}
			if count != 1 {
				t.Errorf("SELECT count() FROM %s FINAL = %d after inserting one event twice, want 1", k.Table, count)
			}
			var id string
			if err := conn.QueryRow(ctx, "SELECT id FROM "+k.Table+" FINAL").Scan(&id); err != nil {
				t.Fatal(err)
			}
			if id != ev.EventHeader().ID {
				t.Errorf("id read back %q, want %q", id, ev.EventHeader().ID)
			}
			assertRowRoundTrips(t, conn, k.Table, names, schemas.Row(ev))

			// Retention works on every event table: partitions are days.
			evTime := ev.EventHeader().Time
			dropped, err := chstore.DropExpiredPartitions(ctx, conn, database, []string{k.Table}, 30, evTime.AddDate(0, 0, 30))
			if err != nil || len(dropped) != 0 {
				t.Errorf("retention 30 days after the event dropped %v (%v), want nothing", dropped, err)
			}
			dropped, err = chstore.DropExpiredPartitions(ctx, conn, database, []string{k.Table}, 30, evTime.AddDate(0, 0, 32))
			if want := []string{k.Table + "/" + evTime.UTC().Format("20060102")}; err != nil || !reflect.DeepEqual(dropped, want) {
				t.Errorf("retention 32 days after the event dropped %v (%v), want %v", dropped, err, want)
			}
		})
	}
}

// assertRowRoundTrips reads the stored row back column by column and
// compares each value with what Row gave to Append.
func assertRowRoundTrips(t *testing.T, conn driver.Conn, table string, names []string, want []any) {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT "+strings.Join(names, ", ")+" FROM "+table+" FINAL")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if !rows.Next() {
		t.Fatalf("no row in %s", table)
	}
	dest := make([]any, len(names))
	for i, ct := range rows.ColumnTypes() {
		dest[i] = reflect.New(ct.ScanType()).Interface()
	}
	if err := rows.Scan(dest...); err != nil {
		t.Fatal(err)
	}
	for i, name := range names {
		got := reflect.ValueOf(dest[i]).Elem().Interface()
		if !sameValue(got, want[i]) {
			t.Errorf("%s.%s read back %#v, want %#v", table, name, got, want[i])
		}
	}
}

func sameValue(got, want any) bool {
	if wt, ok := want.(time.Time); ok {
		// DateTime holds whole seconds (18.16 has no DateTime64).
		gt, ok := got.(time.Time)
		return ok && gt.Equal(wt.Truncate(time.Second))
	}
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	// An empty slice may come back nil, or the other way round.
	if gv.Kind() == reflect.Slice && wv.Kind() == reflect.Slice && gv.Len() == 0 && wv.Len() == 0 {
		return true
	}
	return reflect.DeepEqual(got, want)
}

func readExample(t *testing.T, k schemas.Kind) schemas.Event {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(examplesDir, k.Type+".json"))
	if err != nil {
		t.Fatalf("example for %s: %v", k.Type, err)
	}
	ev := k.New()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(ev); err != nil {
		t.Fatalf("decode example %s: %v", k.Type, err)
	}
	if ev.EventHeader().ID == "" {
		t.Fatalf("example %s has no id", k.Type)
	}
	return ev
}

// tableColumns lists a table's columns from system.columns, which returns
// them in declaration order (18.16 has no position column to sort by).
func tableColumns(t *testing.T, conn driver.Conn, database, table string) []schemas.Column {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT name, type FROM system.columns WHERE database = ? AND table = ?", database, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var cols []schemas.Column
	for rows.Next() {
		var c schemas.Column
		if err := rows.Scan(&c.Name, &c.Type); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return cols
}

func columnDiff(got, want []schemas.Column) string {
	var b strings.Builder
	for i := 0; i < max(len(got), len(want)); i++ {
		var g, w schemas.Column
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		mark := "  "
		if g != w {
			mark = "!="
		}
		fmt.Fprintf(&b, "%s %2d table %-32s go %s\n", mark, i, g.Name+" "+g.Type, w.Name+" "+w.Type)
	}
	return b.String()
}
