package store

import (
	"context"
	"strconv"
	"testing"
)

// BenchmarkRecordCall measures calls logged per second through the
// asynchronous writer, each with 8 steps, until they are on disk.
func BenchmarkRecordCall(b *testing.B) {
	s := openTest(b, Options{})
	tmpl := sampleCall("", t0, 8)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := tmpl
		c.ID = "bench-" + strconv.Itoa(i)
		if err := s.RecordCall(c); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

func BenchmarkCountersNext(b *testing.B) {
	s := openTest(b, Options{})
	ctx := context.Background()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Next(ctx, "rr:bench", 7); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
