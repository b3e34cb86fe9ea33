package reportfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mailmon/mailmon/services/internal/corpustest"
	"github.com/mailmon/mailmon/services/internal/dmarc"
	"github.com/mailmon/mailmon/services/internal/reportfile"
	"github.com/mailmon/mailmon/services/internal/tlsrpt"
)

// BenchmarkCorpus unwraps and parses every file of the DMARC and TLS
// report corpus once per iteration (the throughput `go run ./loadtest
// dmarc-parse` compares with a standard-library baseline).
func BenchmarkCorpus(b *testing.B) {
	dir := corpustest.Path(b, "dmarc")
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
	var raws [][]byte
	size := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		raws = append(raws, raw)
		size += len(raw)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		for _, raw := range raws {
			docs, err := reportfile.Extract(raw, reportfile.DefaultLimits())
			if err != nil {
				continue
			}
			for _, d := range docs {
				if d.Format == reportfile.FormatDMARC {
					dmarc.Parse(d.Data)
				} else {
					tlsrpt.Parse(d.Data)
				}
			}
		}
	}
}
