package arf

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkParseCorpus parses every report of the shared corpus once per
// iteration; msgs/s is reported.
func BenchmarkParseCorpus(b *testing.B) {
	files, _ := filepath.Glob(filepath.Join(corpusDir(b), "*.eml"))
	if len(files) == 0 {
		b.Fatal("no reports in the corpus")
	}
	var msgs [][]byte
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, raw)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, m := range msgs {
			r, err := Parse(m)
			if err != nil {
				b.Fatal(err)
			}
			r.View()
		}
	}
	b.ReportMetric(float64(b.N*len(msgs))/b.Elapsed().Seconds(), "msgs/s")
}
