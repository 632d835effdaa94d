package store

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"testing"
	"time"
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

// BenchmarkWriterLatency measures how long one call's record takes from
// RecordCall to committed, one call at a time: the writer's commit latency,
// reported as its median and 99th percentile.
func BenchmarkWriterLatency(b *testing.B) {
	s := openTest(b, Options{})
	tmpl := sampleCall("", t0, 8)
	ctx := context.Background()
	took := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := tmpl
		c.ID = "lat-" + strconv.Itoa(i)
		t := time.Now()
		if err := s.RecordCall(c); err != nil {
			b.Fatal(err)
		}
		if err := s.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(t))
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkPutAudio measures copying a one-minute voicemail (8 kHz, 16-bit
// mono WAV, 960 KB) into the database, as nodes sharing it do.
func BenchmarkPutAudio(b *testing.B) {
	s := openTest(b, Options{})
	ctx := context.Background()
	audio := bytes.Repeat([]byte{0x12, 0x34}, 8000*60)
	b.SetBytes(int64(len(audio)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.PutAudio(ctx, "vm-bench-"+strconv.Itoa(i), bytes.NewReader(audio)); err != nil {
			b.Fatal(err)
		}
	}
}
