package chstore

import (
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

func TestVersionSupportsTTL(t *testing.T) {
	tests := []struct {
		version proto.Version
		want    bool
	}{
		{proto.Version{Major: 18, Minor: 16, Patch: 1}, false},
		{proto.Version{Major: 19, Minor: 5, Patch: 4}, false},
		{proto.Version{Major: 19, Minor: 6, Patch: 2}, true},
		{proto.Version{Major: 20, Minor: 1}, true},
		{proto.Version{Major: 25, Minor: 8}, true},
		{proto.Version{}, false},
	}
	for _, tt := range tests {
		if got := versionSupportsTTL(tt.version); got != tt.want {
			t.Errorf("versionSupportsTTL(%v) = %v, want %v", tt.version, got, tt.want)
		}
	}
}
