package chstore

import (
	"fmt"
	"regexp"
	"strings"
)

// LocalSuffix names the replicated table behind each Distributed table in
// cluster mode: probe_sent is the Distributed table readers query and
// probe_sent_local the ReplicatedReplacingMergeTree holding the rows.
const LocalSuffix = "_local"

// LocalTable is the name of the replicated table that holds table's rows
// in cluster mode.
func LocalTable(table string) string { return table + LocalSuffix }

// ZooKeeperPath is the replication path of a local table: one per shard,
// database and table, so two databases on one cluster never share a
// replica queue.
func ZooKeeperPath(database, localTable string) string {
	return "/clickhouse/tables/{shard}/" + database + "/" + localTable
}

// clusterRewriter turns the single-server migration statements into their
// cluster form. It is fed every statement of every file in order, so it
// knows which names are tables (with a _local twin) and which are views.
//
//   - CREATE TABLE X (...) ENGINE = E(args) ... becomes X_local ON CLUSTER
//     with ReplicatedE(path, '{replica}', args) and the same clauses, then
//     X ON CLUSTER AS X_local ENGINE = Distributed(cluster, db, X_local,
//     rand()).
//   - CREATE MATERIALIZED VIEW V TO R AS SELECT ... FROM S becomes V ON
//     CLUSTER TO R_local ... FROM S_local: the view fires on the replica
//     that took the insert, and its rollup block replicates like any other
//     (replication fetches parts and does not fire views, so nothing is
//     counted twice).
//   - ALTER TABLE X ... runs ON CLUSTER on X_local; after a column change
//     the Distributed X is dropped and created again over X_local, so it
//     declares the same columns (ClickHouse refuses ALTER ON CLUSTER on a
//     Distributed table whose shard replicates internally).
//   - DROP TABLE drops a view ON CLUSTER, a table's Distributed and local
//     tables ON CLUSTER.
//
// Anything else has no cluster form and is an error, so a new kind of
// migration statement fails the table test before it reaches a cluster.
type clusterRewriter struct {
	cluster  string
	database string
	tables   map[string]bool
	views    map[string]bool
}

func newClusterRewriter(cluster, database string) *clusterRewriter {
	return &clusterRewriter{cluster: cluster, database: database, tables: map[string]bool{}, views: map[string]bool{}}
}

var (
	createTablePattern = regexp.MustCompile(`(?is)^CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*(\(.*\))\s*ENGINE\s*=\s*([A-Za-z]+)\s*\(([^()]*)\)(.*)$`)
	createViewPattern  = regexp.MustCompile(`(?is)^CREATE\s+MATERIALIZED\s+VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?([A-Za-z_][A-Za-z0-9_]*)\s+TO\s+([A-Za-z_][A-Za-z0-9_]*)\s+AS\s+(SELECT\b.*)$`)
	alterPattern       = regexp.MustCompile(`(?is)^ALTER\s+TABLE\s+([A-Za-z_][A-Za-z0-9_]*)\s+(.*)$`)
	dropPattern        = regexp.MustCompile(`(?is)^DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*$`)
	fromPattern        = regexp.MustCompile(`(?i)\bFROM\s+([A-Za-z_][A-Za-z0-9_.]*)`)
	columnAlterPattern = regexp.MustCompile(`(?i)^(ADD|DROP|MODIFY|COMMENT)\s+COLUMN\b`)
	dropColumnPattern  = regexp.MustCompile(`(?i)^DROP\s+COLUMN\b`)
	joinPattern        = regexp.MustCompile(`(?i)\bJOIN\b`)
)

// distributed creates the Distributed table readers query over name's
// local table, with the local table's columns.
func (r *clusterRewriter) distributed(name string) string {
	local := LocalTable(name)
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s ON CLUSTER %s AS %s.%s ENGINE = Distributed(%s, %s, %s, rand())",
		r.database, name, r.cluster, r.database, local, r.cluster, r.database, local)
}

// statement returns the cluster form of one migration statement.
func (r *clusterRewriter) statement(stmt string) ([]string, error) {
	stmt = strings.TrimSpace(stmt)
	on := " ON CLUSTER " + r.cluster
	if m := createTablePattern.FindStringSubmatch(stmt); m != nil {
		name, columns, engine, args, rest := m[1], m[2], m[3], strings.TrimSpace(m[4]), strings.TrimSpace(m[5])
		if !strings.HasSuffix(engine, "MergeTree") || strings.HasPrefix(engine, "Replicated") {
			return nil, fmt.Errorf("table %s: engine %s has no replicated form (a *MergeTree engine is needed)", name, engine)
		}
		if r.views[name] {
			return nil, fmt.Errorf("table %s has the name of a view", name)
		}
		local := LocalTable(name)
		replicated := fmt.Sprintf("'%s', '{replica}'", ZooKeeperPath(r.database, local))
		if args != "" {
			replicated += ", " + args
		}
		r.tables[name] = true
		return []string{
			fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s%s %s ENGINE = Replicated%s(%s) %s", r.database, local, on, columns, engine, replicated, rest),
			r.distributed(name),
		}, nil
	}
	if m := createViewPattern.FindStringSubmatch(stmt); m != nil {
		view, target, query := m[1], m[2], m[3]
		if !r.tables[target] {
			return nil, fmt.Errorf("view %s writes to %s, which no migration created as a table", view, target)
		}
		if joinPattern.MatchString(query) {
			return nil, fmt.Errorf("view %s joins tables; only a view over one local table has a cluster form", view)
		}
		var bad error
		query = fromPattern.ReplaceAllStringFunc(query, func(from string) string {
			source := fromPattern.FindStringSubmatch(from)[1]
			if !r.tables[source] {
				bad = fmt.Errorf("view %s reads %s, which no migration created as a table", view, source)
				return from
			}
			return "FROM " + r.database + "." + LocalTable(source)
		})
		if bad != nil {
			return nil, bad
		}
		r.views[view] = true
		return []string{fmt.Sprintf("CREATE MATERIALIZED VIEW IF NOT EXISTS %s.%s%s TO %s.%s AS %s", r.database, view, on, r.database, LocalTable(target), query)}, nil
	}
	if m := alterPattern.FindStringSubmatch(stmt); m != nil {
		name, change := m[1], strings.TrimSpace(m[2])
		if !r.tables[name] {
			return nil, fmt.Errorf("ALTER TABLE %s: not a table created by an earlier migration", name)
		}
		local := fmt.Sprintf("ALTER TABLE %s.%s%s %s", r.database, LocalTable(name), on, change)
		if !columnAlterPattern.MatchString(change) {
			return []string{local}, nil // partitions, settings: the data lives in the local table only
		}
		// ClickHouse refuses ALTER ... ON CLUSTER on a Distributed table
		// when the shard replicates internally, so the Distributed table
		// is created again over the altered local table. It holds no
		// rows (the sink writes to the local tables), so nothing is lost;
		// readers see no table for the moment in between.
		distributed := []string{
			fmt.Sprintf("DROP TABLE IF EXISTS %s.%s%s", r.database, name, on),
			r.distributed(name),
		}
		if dropColumnPattern.MatchString(change) {
			// Readers go through the Distributed table: it stops naming
			// the column before the rows lose it.
			return append(distributed[:1:1], local, distributed[1]), nil
		}
		return append([]string{local}, distributed...), nil
	}
	if m := dropPattern.FindStringSubmatch(stmt); m != nil {
		name := m[1]
		switch {
		case r.views[name]:
			delete(r.views, name)
			return []string{fmt.Sprintf("DROP TABLE IF EXISTS %s.%s%s", r.database, name, on)}, nil
		case r.tables[name]:
			delete(r.tables, name)
			return []string{
				fmt.Sprintf("DROP TABLE IF EXISTS %s.%s%s", r.database, name, on),
				fmt.Sprintf("DROP TABLE IF EXISTS %s.%s%s", r.database, LocalTable(name), on),
			}, nil
		default:
			return nil, fmt.Errorf("DROP TABLE %s: not a table or view created by an earlier migration", name)
		}
	}
	return nil, fmt.Errorf("no cluster form for %q (CREATE TABLE, CREATE MATERIALIZED VIEW ... TO, ALTER TABLE and DROP TABLE have one)", excerpt(stmt))
}

// clusterMigrations rewrites every statement of files for cluster, in
// order. A file's checksum stays that of its text: the same file is the
// same migration whichever form it was applied in.
func clusterMigrations(files []migration, cluster, database string) ([]migration, error) {
	r := newClusterRewriter(cluster, database)
	out := make([]migration, 0, len(files))
	for _, m := range files {
		var statements []string
		for i, stmt := range m.statements {
			rewritten, err := r.statement(stmt)
			if err != nil {
				return nil, fmt.Errorf("chstore: migrate: %s statement %d: %w", m.name, i+1, err)
			}
			statements = append(statements, rewritten...)
		}
		out = append(out, migration{name: m.name, checksum: m.checksum, statements: statements})
	}
	return out, nil
}
