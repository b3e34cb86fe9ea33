package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fuzzConfig has a field of every shape the decoder walks or hands on.
type fuzzConfig struct {
	testConfig `yaml:",inline"`
	Ptr        *testHTTP             `yaml:"ptr"`
	Any        any                   `yaml:"any"`
	Anys       []any                 `yaml:"anys"`
	Loose      map[string]any        `yaml:"loose"`
	ByNumber   map[int]Duration      `yaml:"by_number"`
	When       time.Time             `yaml:"when"`
	Raw        []byte                `yaml:"raw"`
	Pair       [2]int                `yaml:"pair"`
	Ratio      float64               `yaml:"ratio"`
	Count      uint8                 `yaml:"count"`
	Secrets    map[string]Secret     `yaml:"secrets"`
	Deep       map[string][]testHTTP `yaml:"deep"`
}

const fuzzSecret = "fuzz-env-secret-value"

// FuzzLoad feeds arbitrary bytes through Load's parse path: it must never
// panic, must report only Problems, and must never quote a value that came
// from the environment.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	for _, path := range seeds {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"nats:\n  url: ${env:SECRET}\n  replicas: ${env:SECRET}\n  ack_wait: ${env:SECRET}\n",
		"ptr: {addr: x}\nany: [1, {a: b}]\nloose: {a: [1]}\nby_number: {1: 5s, x: 2s}\n",
		"when: 2024-01-02T03:04:05Z\nraw: !!binary aGVsbG8=\npair: [1, 2]\nratio: .5\ncount: 300\n",
		"a: &a [*a]\nany: &b {x: *b}\n",
		"workers:\n  w: &w {concurrency: 1}\n  v:\n    <<: [*w, *w]\n",
		"deep: {a: [{addr: x, nope: 1}]}\nsecrets: {a: ${env:SECRET}, b: ${env:UNSET}}\n",
		"? [complex, key]\n: value\n",
		"%YAML 1.1\n---\n!!map {nats: !!str 1}\n",
	} {
		f.Add([]byte(s))
	}
	env := func(name string) (string, bool) {
		if strings.HasPrefix(name, "S") {
			return fuzzSecret, true
		}
		return "", false
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := fuzzConfig{testConfig: defaults()}
		err := decode(data, &cfg, env)
		if err == nil {
			return
		}
		var problems Problems
		if !errors.As(err, &problems) || len(problems) == 0 {
			t.Fatalf("decode returned %T %v, want non-empty Problems", err, err)
		}
		if !strings.Contains(string(data), fuzzSecret[:8]) && strings.Contains(err.Error(), fuzzSecret[:8]) {
			t.Fatalf("problem quotes an environment value:\n%v", err)
		}
	})
}
