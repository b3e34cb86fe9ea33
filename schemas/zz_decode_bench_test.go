package schemas

import (
	"os"
	"path/filepath"
	"testing"
)

func BenchmarkDecodeTmp(b *testing.B) {
	raw, _ := os.ReadFile(filepath.Join(examplesDir, TypeDeliveryAttempted+".json"))
	for b.Loop() {
		if _, err := Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}
