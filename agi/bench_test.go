package agi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callflow/callflow/agi/agitest"
	"github.com/callflow/callflow/applets/call"
)

// The benchmark's callers run in a child process (this test binary run
// again) so that the heap measured is the server's alone.
const (
	peerAddrEnv = "AGI_BENCH_PEER_ADDR"
	peerNEnv    = "AGI_BENCH_PEER_N"
)

func benchScript() agitest.Script {
	return agitest.Script{
		Request: "agi://127.0.0.1:4573/flow/bench",
		Keys:    []string{"", "1"},
		Agents:  []agitest.Agent{{Status: "ANSWER", Talk: 30 * time.Second}},
	}
}

// TestPeerProcess is the callers' side of BenchmarkSessions: for each
// "round" line on stdin it places N concurrent calls and answers "ok".
func TestPeerProcess(t *testing.T) {
	addr := os.Getenv(peerAddrEnv)
	if addr == "" {
		t.Skip("runs as BenchmarkSessions' child process")
	}
	n, _ := strconv.Atoi(os.Getenv(peerNEnv))
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var wg sync.WaitGroup
		var failed atomic.Int64
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				s, err := agitest.Dial(ctx, addr, benchScript())
				if err != nil || s.Wait(ctx) != nil || len(s.Commands()) != 6 {
					failed.Add(1)
				}
			}()
		}
		wg.Wait()
		if f := failed.Load(); f > 0 {
			fmt.Printf("failed %d\n", f)
		} else {
			fmt.Println("ok")
		}
	}
}

// BenchmarkSessions runs rounds of 500 concurrent FastAGI calls, each
// answer + stream file + wait for digit + exec dial (+ its variables) +
// hangup, and reports calls per second and the server's memory per
// concurrent call (parked after ANSWER).
func BenchmarkSessions(b *testing.B) {
	const conc = 500
	var (
		parked  atomic.Int64
		park    atomic.Bool
		release = make(chan struct{})
	)
	h := handlerFunc(func(ctx context.Context, c *Call, req Request) {
		if err := c.Answer(ctx); err != nil {
			return
		}
		if park.Load() {
			parked.Add(1)
			<-release
		}
		if _, err := c.Play(ctx, call.PlaySpec{Media: []call.Media{"sound:hello-world"}}); err != nil {
			return
		}
		if _, err := c.Gather(ctx, call.GatherSpec{MaxDigits: 1, FirstTimeout: time.Second}); err != nil {
			return
		}
		if _, err := c.Dial(ctx, call.DialSpec{Targets: []string{"PJSIP/101"}, RingTimeout: 20 * time.Second}); err != nil {
			return
		}
		_ = c.Hangup(ctx, "")
	})
	_, addr := startServer(b, h, Options{})

	cmd := exec.Command(os.Args[0], "-test.run=^TestPeerProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), peerAddrEnv+"="+addr, peerNEnv+"="+strconv.Itoa(conc))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	out := bufio.NewScanner(stdout)
	round := func() error {
		if _, err := io.WriteString(stdin, "round\n"); err != nil {
			return err
		}
		for out.Scan() {
			switch line := out.Text(); {
			case line == "ok":
				return nil
			case strings.HasPrefix(line, "failed "):
				return fmt.Errorf("peer: %s", line)
			}
		}
		return fmt.Errorf("peer process ended: %v", out.Err())
	}

	// Memory: park one round's calls after ANSWER.
	var before, during runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	park.Store(true)
	done := make(chan error, 1)
	go func() { done <- round() }()
	for parked.Load() < conc {
		select {
		case err := <-done:
			b.Fatalf("round ended before every call was parked: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&during)
	park.Store(false)
	close(release)
	if err := <-done; err != nil {
		b.Fatal(err)
	}

	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		if err := round(); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N*conc)/elapsed.Seconds(), "sessions/s")
	b.ReportMetric(float64(int64(during.HeapAlloc)-int64(before.HeapAlloc))/conc, "heapB/session")
	b.ReportMetric(float64(int64(during.StackInuse)-int64(before.StackInuse))/conc, "stackB/session")
}
