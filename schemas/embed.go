package schemas

import (
	"embed"
	"io/fs"
)

//go:embed clickhouse/*.sql jsonschema
var embedded embed.FS

// SchemaBaseURL prefixes Kind.SchemaFile in each schema's $id: where the
// schemas are published for subscribers that are not written in Go.
const SchemaBaseURL = "https://raw.githubusercontent.com/mailmon/mailmon/main/schemas/jsonschema/"

// Migrations holds the ClickHouse DDL, one statement per file named
// NNNN_<name>.sql; apply the files in name order. Every statement is
// idempotent (CREATE TABLE IF NOT EXISTS), so running them again is safe.
// On ClickHouse 18.16, apply them with allow_experimental_low_cardinality_type=1.
var Migrations fs.FS = mustSub("clickhouse")

// JSONSchemas holds the JSON Schema of every kind, at Kind.SchemaFile,
// e.g. "v1/mailmon.probe.v1.sent.json".
var JSONSchemas fs.FS = mustSub("jsonschema")

func mustSub(dir string) fs.FS {
	sub, err := fs.Sub(embedded, dir)
	if err != nil {
		// fs.Sub fails only on an invalid path, and dir is a constant.
		panic(err)
	}
	return sub
}
