package dsn

import (
	"os"
	"path/filepath"
	"testing"
)

func loadCorpusFiles(b *testing.B) [][]byte {
	files, _ := filepath.Glob(filepath.Join(corpusDir(b), "*.eml"))
	if len(files) == 0 {
		b.Fatal("no bounces in the corpus")
	}
	var msgs [][]byte
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, raw)
	}
	return msgs
}

// BenchmarkParseCorpus parses and classifies every bounce of the shared
// corpus once per iteration; msgs/s is reported.
func BenchmarkParseCorpus(b *testing.B) {
	msgs := loadCorpusFiles(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, m := range msgs {
			if _, err := Parse(m); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*len(msgs))/b.Elapsed().Seconds(), "msgs/s")
}
