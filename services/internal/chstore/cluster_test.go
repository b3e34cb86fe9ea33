package chstore

import (
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/mailmon/mailmon/schemas"
)

func TestClusterRewriteStatements(t *testing.T) {
	// Each case runs on a rewriter that already knows the earlier cases'
	// tables and views, as the migration files do.
	tests := []struct {
		name string
		in   string
		want []string
		err  string
	}{
		{
			name: "table",
			in:   "CREATE TABLE IF NOT EXISTS ev\n(\n    id String,\n    time DateTime('UTC')\n)\nENGINE = ReplacingMergeTree()\nPARTITION BY toYYYYMMDD(time)\nORDER BY (time, id)",
			want: []string{
				"CREATE TABLE IF NOT EXISTS db.ev_local ON CLUSTER c (\n    id String,\n    time DateTime('UTC')\n) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/ev_local', '{replica}') PARTITION BY toYYYYMMDD(time)\nORDER BY (time, id)",
				"CREATE TABLE IF NOT EXISTS db.ev ON CLUSTER c AS db.ev_local ENGINE = Distributed(c, db, ev_local, rand())",
			},
		},
		{
			name: "engine arguments follow the replica",
			in:   "CREATE TABLE ev_v (id String, v UInt64, n AggregateFunction(count)) ENGINE = ReplacingMergeTree(v) ORDER BY id",
			want: []string{
				"CREATE TABLE IF NOT EXISTS db.ev_v_local ON CLUSTER c (id String, v UInt64, n AggregateFunction(count)) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/ev_v_local', '{replica}', v) ORDER BY id",
				"CREATE TABLE IF NOT EXISTS db.ev_v ON CLUSTER c AS db.ev_v_local ENGINE = Distributed(c, db, ev_v_local, rand())",
			},
		},
		{
			name: "rollup",
			in:   "CREATE TABLE IF NOT EXISTS ev_5m (bucket DateTime, n AggregateFunction(count)) ENGINE = AggregatingMergeTree() PARTITION BY toYYYYMMDD(bucket) ORDER BY bucket",
			want: []string{
				"CREATE TABLE IF NOT EXISTS db.ev_5m_local ON CLUSTER c (bucket DateTime, n AggregateFunction(count)) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/db/ev_5m_local', '{replica}') PARTITION BY toYYYYMMDD(bucket) ORDER BY bucket",
				"CREATE TABLE IF NOT EXISTS db.ev_5m ON CLUSTER c AS db.ev_5m_local ENGINE = Distributed(c, db, ev_5m_local, rand())",
			},
		},
		{
			name: "view reads and writes the local tables",
			in:   "CREATE MATERIALIZED VIEW IF NOT EXISTS ev_5m_mv TO ev_5m\nAS SELECT toStartOfFiveMinute(time) AS bucket, countState() AS n\nFROM ev\nGROUP BY bucket",
			want: []string{
				"CREATE MATERIALIZED VIEW IF NOT EXISTS db.ev_5m_mv ON CLUSTER c TO db.ev_5m_local AS SELECT toStartOfFiveMinute(time) AS bucket, countState() AS n\nFROM db.ev_local\nGROUP BY bucket",
			},
		},
		{name: "table named as a view", in: "CREATE TABLE ev_5m_mv (id String) ENGINE = MergeTree() ORDER BY id", err: "name of a view"},
		{
			name: "add column to both",
			in:   "ALTER TABLE ev ADD COLUMN trusted UInt8",
			want: []string{
				"ALTER TABLE db.ev_local ON CLUSTER c ADD COLUMN trusted UInt8",
				"DROP TABLE IF EXISTS db.ev ON CLUSTER c",
				"CREATE TABLE IF NOT EXISTS db.ev ON CLUSTER c AS db.ev_local ENGINE = Distributed(c, db, ev_local, rand())",
			},
		},
		{
			name: "drop column from the Distributed table first",
			in:   "ALTER TABLE ev DROP COLUMN trusted",
			want: []string{
				"DROP TABLE IF EXISTS db.ev ON CLUSTER c",
				"ALTER TABLE db.ev_local ON CLUSTER c DROP COLUMN trusted",
				"CREATE TABLE IF NOT EXISTS db.ev ON CLUSTER c AS db.ev_local ENGINE = Distributed(c, db, ev_local, rand())",
			},
		},
		{
			name: "partition change on the local table only",
			in:   "ALTER TABLE ev DROP PARTITION 20260301",
			want: []string{"ALTER TABLE db.ev_local ON CLUSTER c DROP PARTITION 20260301"},
		},
		{
			name: "drop view",
			in:   "DROP TABLE IF EXISTS ev_5m_mv",
			want: []string{"DROP TABLE IF EXISTS db.ev_5m_mv ON CLUSTER c"},
		},
		{
			name: "drop table",
			in:   "DROP TABLE ev_v",
			want: []string{"DROP TABLE IF EXISTS db.ev_v ON CLUSTER c", "DROP TABLE IF EXISTS db.ev_v_local ON CLUSTER c"},
		},
		{name: "engine without a replicated form", in: "CREATE TABLE m (id String) ENGINE = Memory()", err: "no replicated form"},
		{name: "already replicated", in: "CREATE TABLE r (id String) ENGINE = ReplicatedMergeTree('/p', 'r') ORDER BY id", err: "no replicated form"},
		{
			// Run again (a file that failed half way): the same
			// idempotent statements.
			name: "table again",
			in:   "CREATE TABLE IF NOT EXISTS ev_v (id String, v UInt64, n AggregateFunction(count)) ENGINE = ReplacingMergeTree(v) ORDER BY id",
			want: []string{
				"CREATE TABLE IF NOT EXISTS db.ev_v_local ON CLUSTER c (id String, v UInt64, n AggregateFunction(count)) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/ev_v_local', '{replica}', v) ORDER BY id",
				"CREATE TABLE IF NOT EXISTS db.ev_v ON CLUSTER c AS db.ev_v_local ENGINE = Distributed(c, db, ev_v_local, rand())",
			},
		},
		{name: "view over an unknown table", in: "CREATE MATERIALIZED VIEW v TO ev_5m AS SELECT 1 FROM other", err: "reads other"},
		{name: "view into an unknown table", in: "CREATE MATERIALIZED VIEW v TO other AS SELECT 1 FROM ev", err: "writes to other"},
		{name: "view with a join", in: "CREATE MATERIALIZED VIEW v TO ev_5m AS SELECT 1 FROM ev JOIN ev_5m USING id", err: "joins"},
		{name: "view without TO", in: "CREATE MATERIALIZED VIEW v ENGINE = MergeTree() ORDER BY x AS SELECT 1 AS x FROM ev", err: "no cluster form"},
		{name: "alter an unknown table", in: "ALTER TABLE other ADD COLUMN x UInt8", err: "not a table"},
		{name: "drop an unknown table", in: "DROP TABLE IF EXISTS other", err: "not a table or view"},
		{name: "insert", in: "INSERT INTO ev SELECT * FROM ev", err: "no cluster form"},
	}
	r := newClusterRewriter("c", "db")
	for _, tt := range tests {
		got, err := r.statement(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err = %v, want one containing %q (got %q)", tt.name, err, tt.err, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\ngot  %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

// TestClusterMigrationsEveryFile rewrites every migration file and checks
// the shape of each result: every statement ON CLUSTER and qualified with
// the database, every table replicated under its own ZooKeeper path with a
// Distributed twin of the same name, every view reading and writing local
// tables, and the same tables and views as the single-server schema.
func TestClusterMigrationsEveryFile(t *testing.T) {
	files, err := loadMigrations(schemas.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	clustered, err := clusterMigrations(files, "mailmon", "analytics")
	if err != nil {
		t.Fatal(err)
	}
	if len(clustered) != len(files) {
		t.Fatalf("%d files rewritten, want %d", len(clustered), len(files))
	}
	var (
		createLocal = regexp.MustCompile(`^CREATE TABLE IF NOT EXISTS analytics\.(\w+)_local ON CLUSTER mailmon \(.*\) ENGINE = Replicated(\w*MergeTree)\('/clickhouse/tables/\{shard\}/analytics/(\w+)', '\{replica\}'[,)]`)
		createDist  = regexp.MustCompile(`^CREATE TABLE IF NOT EXISTS analytics\.(\w+) ON CLUSTER mailmon AS analytics\.(\w+)_local ENGINE = Distributed\(mailmon, analytics, (\w+)_local, rand\(\)\)$`)
		createView  = regexp.MustCompile(`^CREATE MATERIALIZED VIEW IF NOT EXISTS analytics\.(\w+) ON CLUSTER mailmon TO analytics\.\w+_local AS SELECT .* FROM analytics\.\w+_local\b`)
		alterOrDrop = regexp.MustCompile(`^(ALTER|DROP) TABLE (IF EXISTS )?analytics\.\w+ ON CLUSTER mailmon\b`)
		from        = regexp.MustCompile(`(?i)\bFROM\s+(\S+)`)
	)
	tables, views := map[string]bool{}, map[string]bool{}
	for i, m := range clustered {
		if m.name != files[i].name || m.checksum != files[i].checksum {
			t.Errorf("file %d is %s/%s, want %s/%s (the checksum of the file's text)", i, m.name, m.checksum, files[i].name, files[i].checksum)
		}
		if len(m.statements) < len(files[i].statements) {
			t.Errorf("%s: %d statements from %d", m.name, len(m.statements), len(files[i].statements))
		}
		for j := 0; j < len(m.statements); j++ {
			stmt := strings.Join(strings.Fields(m.statements[j]), " ")
			switch {
			case createLocal.MatchString(stmt):
				g := createLocal.FindStringSubmatch(stmt)
				if g[3] != g[1]+"_local" {
					t.Errorf("%s: %s_local replicates under path %s", m.name, g[1], g[3])
				}
				if j+1 >= len(m.statements) {
					t.Errorf("%s: %s_local has no Distributed table after it", m.name, g[1])
					continue
				}
				d := createDist.FindStringSubmatch(m.statements[j+1])
				if d == nil || d[1] != g[1] || d[2] != g[1] || d[3] != g[1] {
					t.Errorf("%s: after %s_local comes %q, want its Distributed table", m.name, g[1], m.statements[j+1])
				}
				tables[g[1]] = true
				j++
			case createView.MatchString(stmt):
				for _, f := range from.FindAllStringSubmatch(stmt, -1) {
					if !strings.HasPrefix(f[1], "analytics.") || !strings.HasSuffix(f[1], "_local") {
						t.Errorf("%s: view reads %s, want a local table", m.name, f[1])
					}
				}
				views[createView.FindStringSubmatch(stmt)[1]] = true
			case createDist.MatchString(stmt):
				// A Distributed table created again after a column change.
				if g := createDist.FindStringSubmatch(stmt); !tables[g[1]] {
					t.Errorf("%s: Distributed table %s over no local table", m.name, g[1])
				}
			case alterOrDrop.MatchString(stmt):
				if strings.HasPrefix(stmt, "DROP") {
					delete(views, strings.Fields(stmt)[4][len("analytics."):])
				}
			default:
				t.Errorf("%s: unexpected statement %q", m.name, stmt)
			}
		}
	}

	// The same names as the single-server schema, from its own text.
	wantTables, wantViews := map[string]bool{}, map[string]bool{}
	createTable := regexp.MustCompile(`(?is)^CREATE TABLE IF NOT EXISTS (\w+)`)
	createMV := regexp.MustCompile(`(?is)^CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+)`)
	dropTable := regexp.MustCompile(`(?is)^DROP TABLE IF EXISTS (\w+)`)
	for _, m := range files {
		for _, stmt := range m.statements {
			if g := createTable.FindStringSubmatch(stmt); g != nil {
				wantTables[g[1]] = true
			}
			if g := createMV.FindStringSubmatch(stmt); g != nil {
				wantViews[g[1]] = true
			}
			if g := dropTable.FindStringSubmatch(stmt); g != nil {
				delete(wantViews, g[1])
			}
		}
	}
	if !reflect.DeepEqual(tables, wantTables) {
		t.Errorf("cluster tables %v\nwant %v", keys(tables), keys(wantTables))
	}
	if !reflect.DeepEqual(views, wantViews) {
		t.Errorf("cluster views %v\nwant %v", keys(views), keys(wantViews))
	}
	for _, k := range schemas.Kinds() {
		if !tables[k.Table] {
			t.Errorf("event table %s has no cluster form", k.Table)
		}
	}
	for _, r := range schemas.Rollups() {
		if !tables[r.Table] {
			t.Errorf("rollup %s has no cluster form", r.Table)
		}
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
