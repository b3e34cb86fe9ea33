package chstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

// DropExpiredPartitions enforces retention on servers without TTL (and
// works on every server): for each table, partitioned by toYYYYMMDD of
// the event time, it drops the day partitions older than keepDays before
// now (UTC days). The day keepDays ago and everything after it are kept,
// so no event younger than keepDays is ever dropped.
//
// It returns what it dropped as "table/YYYYMMDD". A table that does not
// exist or is not partitioned by day is an error; the other tables are
// still processed and all errors are returned together.
func DropExpiredPartitions(ctx context.Context, conn driver.Conn, database string, tables []string, keepDays int, now time.Time) ([]string, error) {
	return DropExpiredPartitionsOnCluster(ctx, conn, database, "", tables, keepDays, now)
}

// DropExpiredPartitionsOnCluster is DropExpiredPartitions for a cluster;
// an empty cluster is DropExpiredPartitions. The tables are named as
// readers know them; the partitions are dropped from their replicated
// *_local tables, ON CLUSTER, so every shard drops its own (a Distributed
// table holds no data). The partitions listed are this replica's.
func DropExpiredPartitionsOnCluster(ctx context.Context, conn driver.Conn, database, cluster string, tables []string, keepDays int, now time.Time) ([]string, error) {
	if cluster != "" {
		if err := checkIdentifier(cluster); err != nil {
			return nil, fmt.Errorf("chstore: retention: cluster %w", err)
		}
	}
	if err := checkIdentifier(database); err != nil {
		return nil, fmt.Errorf("chstore: retention: database %w", err)
	}
	if keepDays < 1 {
		return nil, fmt.Errorf("chstore: retention: keepDays must be at least 1, got %d", keepDays)
	}
	cutoff := now.UTC().AddDate(0, 0, -keepDays).Format("20060102")
	if cluster != "" {
		// A replica that is down fails the drop in bounded time; the
		// drop stays queued for it.
		ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
			"distributed_ddl_task_timeout": int64Setting(conn, int(clusterDDLTimeout.Seconds())),
		}))
	}

	dropped := []string{}
	var errs []error
	for _, table := range tables {
		d, err := dropTableExpired(ctx, conn, database, cluster, table, cutoff)
		dropped = append(dropped, d...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return dropped, errors.Join(errs...)
}

func dropTableExpired(ctx context.Context, conn driver.Conn, database, cluster, name, cutoff string) ([]string, error) {
	if err := checkIdentifier(name); err != nil {
		return nil, fmt.Errorf("chstore: retention: table %w", err)
	}
	table, onCluster := name, ""
	if cluster != "" {
		table, onCluster = LocalTable(name), " ON CLUSTER "+cluster
	}
	var exists uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", database, table).Scan(&exists); err != nil {
		return nil, fmt.Errorf("chstore: retention: %s.%s: %w", database, table, err)
	}
	if exists == 0 {
		return nil, fmt.Errorf("chstore: retention: table %s.%s does not exist", database, table)
	}

	rows, err := conn.Query(ctx, "SELECT DISTINCT partition FROM system.parts WHERE database = ? AND table = ? AND active ORDER BY partition", database, table)
	if err != nil {
		return nil, fmt.Errorf("chstore: retention: %s.%s: %w", database, table, err)
	}
	var partitions []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return nil, fmt.Errorf("chstore: retention: %s.%s: %w", database, table, err)
		}
		partitions = append(partitions, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chstore: retention: %s.%s: %w", database, table, err)
	}

	var dropped []string
	for _, p := range partitions {
		if !isDay(p) {
			return dropped, fmt.Errorf("chstore: retention: %s.%s has partition %q; only tables partitioned by toYYYYMMDD(time) can be expired by day", database, table, p)
		}
		// Equal-length digit strings compare like the dates they spell.
		if p >= cutoff {
			continue
		}
		// p is eight digits, so splicing it is safe; it is the partition
		// value itself, which every server version accepts.
		if err := conn.Exec(ctx, "ALTER TABLE "+database+"."+table+onCluster+" DROP PARTITION "+p); err != nil {
			return dropped, fmt.Errorf("chstore: retention: drop %s.%s partition %s: %w", database, table, p, err)
		}
		dropped = append(dropped, name+"/"+p)
	}
	return dropped, nil
}

// isDay reports whether a partition value is a YYYYMMDD date.
func isDay(partition string) bool {
	if len(partition) != 8 {
		return false
	}
	_, err := time.Parse("20060102", partition)
	return err == nil
}

// SupportsTTL reports whether the server understands table and column TTL
// (ClickHouse 19.6 and later). Debian's 18.16 does not; there retention is
// DropExpiredPartitions alone. An unknown version counts as no support.
func SupportsTTL(ctx context.Context, conn driver.Conn) bool {
	if err := conn.Ping(ctx); err != nil {
		return false
	}
	v, err := conn.ServerVersion()
	if err != nil {
		return false
	}
	return versionSupportsTTL(v.Version)
}

func versionSupportsTTL(v proto.Version) bool {
	return v.Major > 19 || (v.Major == 19 && v.Minor >= 6)
}
