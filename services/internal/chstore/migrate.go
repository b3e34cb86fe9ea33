package chstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

// MigrationsTable records which migration files were applied.
const MigrationsTable = "schema_migrations"

// migration is one *.sql file, parsed before anything is applied so a
// broken file stops the run before it starts.
type migration struct {
	name       string
	checksum   string
	statements []string
}

// Migrate applies the *.sql files at the root of migrations, in name order,
// each exactly once. Applied files are recorded in schema_migrations with
// their SHA-256 checksum and time; a recorded file whose content has since
// changed is an error and nothing is applied. It returns the names applied
// by this call (empty when the schema was already current).
//
// The files use unqualified table names, so conn must have been opened with
// database as its default database (Open does that); Migrate checks it. A
// file is recorded only after all its statements succeeded, so statements
// should be idempotent (CREATE ... IF NOT EXISTS): a file that failed half
// way is re-run from its start, and two processes migrating at the same
// time may both run it.
func Migrate(ctx context.Context, conn driver.Conn, database string, migrations fs.FS) (applied []string, err error) {
	return MigrateOnCluster(ctx, conn, database, "", migrations)
}

// MigrateFor migrates cfg's database, on cfg's cluster when one is set.
func MigrateFor(ctx context.Context, conn driver.Conn, cfg Config, migrations fs.FS) (applied []string, err error) {
	return MigrateOnCluster(ctx, conn, cfg.Database, cfg.Cluster, migrations)
}

// MigrateOnCluster is Migrate for a cluster (the name in the servers'
// remote_servers); an empty cluster is Migrate. Each file's statements
// are rewritten to their cluster form (see clusterRewriter): replicated
// *_local tables and a Distributed table per table, all ON CLUSTER, so
// one run through any replica migrates every node.
//
// The record of applied files is itself a ReplicatedReplacingMergeTree
// created ON CLUSTER: every replica sees the same record, so a sink that
// connects to another replica next time finds the schema current and runs
// no DDL (ALTER ... ADD COLUMN is not idempotent, and ON CLUSTER DDL waits
// for every replica, which would stall a start while one is down). It is
// read on the local replica: with one shard that holds every row.
func MigrateOnCluster(ctx context.Context, conn driver.Conn, database, cluster string, migrations fs.FS) (applied []string, err error) {
	if err := checkIdentifier(database); err != nil {
		return nil, fmt.Errorf("chstore: migrate: database %w", err)
	}
	if cluster != "" {
		if err := checkIdentifier(cluster); err != nil {
			return nil, fmt.Errorf("chstore: migrate: cluster %w", err)
		}
	}
	files, err := loadMigrations(migrations)
	if err != nil {
		return nil, err
	}
	if cluster != "" {
		if files, err = clusterMigrations(files, cluster, database); err != nil {
			return nil, err
		}
	}
	var current string
	if err := conn.QueryRow(ctx, "SELECT currentDatabase()").Scan(&current); err != nil {
		return nil, fmt.Errorf("chstore: migrate: %w", err)
	}
	if current != database {
		return nil, fmt.Errorf("chstore: migrate: the connection's database is %q, want %q (open it with that database)", current, database)
	}
	ctx = ddlContext(ctx, conn, cluster != "")

	table := database + "." + MigrationsTable
	if err := createMigrationsTable(ctx, conn, database, cluster); err != nil {
		return nil, err
	}
	if cluster != "" {
		syncRecord(ctx, conn, table)
	}
	recorded, err := recordedChecksums(ctx, conn, table)
	if err != nil {
		return nil, err
	}

	var changed []string
	for _, m := range files {
		for _, sum := range recorded[m.name] {
			if sum != m.checksum {
				changed = append(changed, fmt.Sprintf("%s (applied with checksum %.12s, now %.12s)", m.name, sum, m.checksum))
				break
			}
		}
	}
	if len(changed) > 0 {
		return nil, fmt.Errorf("chstore: migrate: applied migrations changed since (add a new file instead of editing one): %s", strings.Join(changed, "; "))
	}

	applied = []string{}
	for _, m := range files {
		if len(recorded[m.name]) > 0 {
			continue
		}
		for i, stmt := range m.statements {
			if err := conn.Exec(ctx, stmt); err != nil {
				return applied, fmt.Errorf("chstore: migrate: %s statement %d (%s): %w", m.name, i+1, excerpt(stmt), err)
			}
		}
		if err := recordMigration(ctx, conn, table, m); err != nil {
			return applied, err
		}
		applied = append(applied, m.name)
	}
	return applied, nil
}

// createMigrationsTable creates the record of applied files: a
// ReplacingMergeTree keyed by file name, so two processes recording the
// same file at once leave one row after merges (reads cope with both). On
// a cluster it is replicated and created ON CLUSTER, but only when this
// replica lacks it: ON CLUSTER DDL waits for every replica.
func createMigrationsTable(ctx context.Context, conn driver.Conn, database, cluster string) error {
	table := database + "." + MigrationsTable
	const columns = `(
		version String,
		checksum String,
		applied_at DateTime('UTC')
	)`
	if cluster == "" {
		if err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+table+` `+columns+` ENGINE = ReplacingMergeTree() ORDER BY version`); err != nil {
			return fmt.Errorf("chstore: migrate: create %s: %w", table, err)
		}
		return nil
	}
	var engines []string
	rows, err := conn.Query(ctx, "SELECT engine FROM system.tables WHERE database = ? AND name = ?", database, MigrationsTable)
	if err != nil {
		return fmt.Errorf("chstore: migrate: look up %s: %w", table, err)
	}
	for rows.Next() {
		var engine string
		if err := rows.Scan(&engine); err != nil {
			rows.Close()
			return fmt.Errorf("chstore: migrate: look up %s: %w", table, err)
		}
		engines = append(engines, engine)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("chstore: migrate: look up %s: %w", table, err)
	}
	if len(engines) > 0 {
		if !strings.HasPrefix(engines[0], "Replicated") {
			return fmt.Errorf("chstore: migrate: %s is a %s: the database was created on a single server; a cluster needs a database of its own (or its tables converted by hand)", table, engines[0])
		}
		return nil
	}
	// The database first: Open created it on this replica only.
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+database+" ON CLUSTER "+cluster); err != nil {
		return fmt.Errorf("chstore: migrate: create database %s on cluster %s: %w", database, cluster, err)
	}
	err = conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+table+` ON CLUSTER `+cluster+` `+columns+
		` ENGINE = ReplicatedReplacingMergeTree('`+ZooKeeperPath(database, MigrationsTable)+`', '{replica}') ORDER BY version`)
	if err != nil {
		return fmt.Errorf("chstore: migrate: create %s on cluster %s: %w", table, cluster, err)
	}
	return nil
}

// recordSyncTimeout bounds the wait for this replica's copy of the
// record of applied files.
const recordSyncTimeout = 10 * time.Second

// syncRecord waits until this replica has fetched every record another
// replica wrote (a record written a few milliseconds ago through the other
// replica would otherwise look missing, and its file would run again). A
// replica that cannot sync in time (its peer down with a part it lacks)
// goes on with what it holds: the statements are idempotent, and a file
// that is not (ALTER ... ADD COLUMN) fails with a clear error and is
// retried by the next start.
func syncRecord(ctx context.Context, conn driver.Conn, table string) {
	ctx, cancel := context.WithTimeout(ctx, recordSyncTimeout)
	defer cancel()
	_ = conn.Exec(ctx, "SYSTEM SYNC REPLICA "+table)
}

// clusterDDLTimeout bounds the wait for every replica to run an ON CLUSTER
// statement (distributed_ddl_task_timeout, 180 s by default), below the
// default read timeout, so a replica that is down fails the migration with
// ClickHouse's "unfinished hosts" error rather than a client timeout. The
// statement stays queued, and the replica runs it when it is back.
var clusterDDLTimeout = 20 * time.Second

// int64Setting is the value to send for an Int64 setting (such as
// distributed_ddl_task_timeout) so that the server reads n. Servers up to
// revision 54429 take settings in binary and read an Int64 one as a zigzag
// varint, while clickhouse-go writes every int as a plain varint: 2n
// arrives as n (measured on 18.16: 20 arrived as 10, 1 as -1). Newer
// servers take settings as text. UInt64 and Bool settings are plain
// varints and need no such care.
func int64Setting(conn driver.Conn, n int) int {
	v, err := conn.ServerVersion()
	if err == nil && v.Revision <= proto.DBMS_MIN_REVISION_WITH_SETTINGS_SERIALIZED_AS_STRINGS {
		return 2 * n
	}
	return n
}

// ddlContext turns on LowCardinality for DDL on servers before 19.1, where
// it is still experimental. Newer servers do not need (and may one day
// reject) the setting, so it is sent only to old ones. On a cluster it
// bounds the wait for ON CLUSTER statements. Settings values must be Go
// ints for these old servers.
func ddlContext(ctx context.Context, conn driver.Conn, cluster bool) context.Context {
	settings := clickhouse.Settings{}
	if v, err := conn.ServerVersion(); err == nil && v.Version.Major < 19 {
		settings["allow_experimental_low_cardinality_type"] = 1
	}
	if cluster {
		settings["distributed_ddl_task_timeout"] = int64Setting(conn, int(clusterDDLTimeout.Seconds()))
	}
	if len(settings) == 0 {
		return ctx
	}
	return clickhouse.Context(ctx, clickhouse.WithSettings(settings))
}

func recordedChecksums(ctx context.Context, conn driver.Conn, table string) (map[string][]string, error) {
	rows, err := conn.Query(ctx, "SELECT version, checksum FROM "+table)
	if err != nil {
		return nil, fmt.Errorf("chstore: migrate: read %s: %w", table, err)
	}
	defer rows.Close()
	recorded := map[string][]string{}
	for rows.Next() {
		var version, checksum string
		if err := rows.Scan(&version, &checksum); err != nil {
			return nil, fmt.Errorf("chstore: migrate: read %s: %w", table, err)
		}
		recorded[version] = append(recorded[version], checksum)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chstore: migrate: read %s: %w", table, err)
	}
	return recorded, nil
}

func recordMigration(ctx context.Context, conn driver.Conn, table string, m migration) error {
	// A batch, not INSERT ... VALUES: inline values hang on 18.16.
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+table+" (version, checksum, applied_at)")
	if err != nil {
		return fmt.Errorf("chstore: migrate: record %s: %w", m.name, err)
	}
	if err := batch.Append(m.name, m.checksum, time.Now().UTC()); err != nil {
		_ = batch.Abort()
		return fmt.Errorf("chstore: migrate: record %s: %w", m.name, err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("chstore: migrate: record %s: %w", m.name, err)
	}
	return nil
}

func loadMigrations(migrations fs.FS) ([]migration, error) {
	if migrations == nil {
		return nil, errors.New("chstore: migrate: no migrations given")
	}
	names, err := fs.Glob(migrations, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("chstore: migrate: %w", err)
	}
	sort.Strings(names)
	files := make([]migration, 0, len(names))
	for _, name := range names {
		data, err := fs.ReadFile(migrations, name)
		if err != nil {
			return nil, fmt.Errorf("chstore: migrate: %w", err)
		}
		statements, err := splitStatements(string(data))
		if err != nil {
			return nil, fmt.Errorf("chstore: migrate: %s: %w", name, err)
		}
		for i, stmt := range statements {
			if isInlineInsert(stmt) {
				return nil, fmt.Errorf("chstore: migrate: %s statement %d: INSERT ... VALUES hangs on ClickHouse 18.16 over the native protocol; use INSERT ... SELECT", name, i+1)
			}
		}
		sum := sha256.Sum256(data)
		files = append(files, migration{name: name, checksum: hex.EncodeToString(sum[:]), statements: statements})
	}
	return files, nil
}

func isInlineInsert(stmt string) bool {
	upper := strings.ToUpper(stmt)
	return strings.HasPrefix(upper, "INSERT") && strings.Contains(upper, "VALUES")
}

// splitStatements strips comments (-- to the end of the line and /* ... */)
// and splits on semicolons that are outside string literals and quoted
// identifiers. Each statement comes back trimmed; empty ones are dropped.
func splitStatements(sql string) ([]string, error) {
	var (
		statements []string
		current    strings.Builder
	)
	flush := func() {
		if s := strings.TrimSpace(current.String()); s != "" {
			statements = append(statements, s)
		}
		current.Reset()
	}
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch {
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			end := strings.IndexByte(sql[i:], '\n')
			if end < 0 {
				i = len(sql)
				continue
			}
			i += end - 1 // the newline itself is kept as whitespace
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("unterminated /* comment at byte %d", i)
			}
			i += 2 + end + 1
			current.WriteByte(' ')
		case c == '\'' || c == '"' || c == '`':
			end, err := quotedEnd(sql, i)
			if err != nil {
				return nil, err
			}
			current.WriteString(sql[i : end+1])
			i = end
		case c == ';':
			flush()
		default:
			current.WriteByte(c)
		}
	}
	flush()
	return statements, nil
}

// quotedEnd returns the index of the quote that closes the literal opened
// at start. Both backslash escapes and doubled quotes are accepted, as
// ClickHouse does.
func quotedEnd(sql string, start int) (int, error) {
	quote := sql[start]
	for i := start + 1; i < len(sql); i++ {
		switch sql[i] {
		case '\\':
			i++
		case quote:
			if i+1 < len(sql) && sql[i+1] == quote {
				i++
				continue
			}
			return i, nil
		}
	}
	return 0, fmt.Errorf("unterminated %c quote at byte %d", quote, start)
}

// excerpt shortens a statement for an error message.
func excerpt(stmt string) string {
	stmt = strings.Join(strings.Fields(stmt), " ")
	if len(stmt) > 80 {
		return stmt[:77] + "..."
	}
	return stmt
}
