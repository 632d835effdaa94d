package tomlpos

import (
	"os"
	"testing"
)

func seedFlow(b *testing.B) []byte {
	b.Helper()
	src, err := os.ReadFile("../../testdata/flows/basic-support.toml")
	if err != nil {
		b.Fatal(err)
	}
	return src
}

// BenchmarkParse is one of the 10,000 files the flows benchmarks load.
func BenchmarkParse(b *testing.B) {
	src := seedFlow(b)
	for b.Loop() {
		if _, err := Parse(src); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIndex is what the first position asked of a document costs.
func BenchmarkIndex(b *testing.B) {
	src := seedFlow(b)
	for b.Loop() {
		if _, ok := NewIndex(src).Lookup("steps[10].play[0]"); !ok {
			b.Fatal("not found")
		}
	}
}
