package postfixlog

import (
	"bufio"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// benchLines loads the corpus logs (or, without the corpus, the testdata
// logs) into memory.
func benchLines(b testing.TB) []string {
	b.Helper()
	base := os.Getenv("MAILMON_CORPORA")
	if base == "" {
		base = filepath.Join("..", "..", "..", "..", "shared", "corpora")
	}
	files, _ := filepath.Glob(filepath.Join(base, "postfix", "logs", "*.log"))
	if len(files) == 0 {
		files, _ = filepath.Glob(filepath.Join("testdata", "*.log"))
	}
	var lines []string
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		f.Close()
	}
	if len(lines) == 0 {
		b.Fatal("no log lines")
	}
	return lines
}

// BenchmarkParse: one op is one log line parsed.
func BenchmarkParse(b *testing.B) {
	lines := benchLines(b)
	p := &Parser{Ref: time.Now()}
	var l Line
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.Parse(lines[i%len(lines)], int64(i), &l)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkParseJoinClassify: one op is one log line parsed and joined,
// with every delivery and reject classified.
func BenchmarkParseJoinClassify(b *testing.B) {
	lines := benchLines(b)
	p := &Parser{Ref: time.Now()}
	j := NewJoiner(JoinerConfig{})
	var l Line
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if p.Parse(lines[i%len(lines)], int64(i), &l) {
			j.Add(&l)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
