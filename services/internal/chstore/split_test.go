package chstore

import (
	"reflect"
	"testing"
)

func TestSplitStatements(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		want []string
	}{
		{"empty", "", nil},
		{"only comments", "-- a\n/* b */\n-- c", nil},
		{"one without semicolon", "SELECT 1", []string{"SELECT 1"}},
		{"two at line ends", "SELECT 1;\nSELECT 2;\n", []string{"SELECT 1", "SELECT 2"}},
		{"line comment stripped", "SELECT 1 -- one; two\n, 2;", []string{"SELECT 1 \n, 2"}},
		{"block comment stripped", "SELECT /* ; */ 1;", []string{"SELECT   1"}},
		{"semicolon in string", "SELECT 'a;b';SELECT 2", []string{"SELECT 'a;b'", "SELECT 2"}},
		{"comment marker in string", "SELECT '--x', '/*y*/'", []string{"SELECT '--x', '/*y*/'"}},
		{"escaped quotes", `SELECT 'it\'s;', 'it''s;'`, []string{`SELECT 'it\'s;', 'it''s;'`}},
		{"quoted identifiers", "SELECT `a;b`, \"c;d\" FROM t", []string{"SELECT `a;b`, \"c;d\" FROM t"}},
		{"empty statements dropped", ";;\n;SELECT 1;;", []string{"SELECT 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := splitStatements(tt.sql)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("splitStatements(%q) = %q, want %q", tt.sql, got, tt.want)
			}
		})
	}
}

func TestSplitStatementsErrors(t *testing.T) {
	for _, sql := range []string{"SELECT 'x", "SELECT `x", `SELECT "x`, "SELECT 1 /* open", `SELECT 'x\`} {
		if _, err := splitStatements(sql); err == nil {
			t.Errorf("splitStatements(%q) succeeded, want an error", sql)
		}
	}
}

func FuzzSplitStatements(f *testing.F) {
	for _, s := range []string{"SELECT 1;", "SELECT 'a;b' -- c\n;", "/* x */ SELECT `q`", "'\\", "--"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		statements, err := splitStatements(sql)
		if err != nil {
			return
		}
		for _, s := range statements {
			if s == "" {
				t.Errorf("empty statement from %q", sql)
			}
		}
	})
}
