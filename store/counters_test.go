package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

func TestCountersHandOutEveryPositionEvenlyUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	const goroutines, each, n = 16, 60, 4
	var (
		mu   sync.Mutex
		seen [n]int
		wg   sync.WaitGroup
	)
	for range goroutines {
		wg.Go(func() {
			for range each {
				p, err := s.Next(ctx, "rr:Acme Support:tech", n)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[p]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for p, c := range seen {
		if c != goroutines*each/n {
			t.Errorf("position %d handed out %d times, want %d (all: %v)", p, c, goroutines*each/n, seen)
		}
	}
	if _, err := s.Next(ctx, "k", 0); err == nil {
		t.Error("Next with n = 0 accepted")
	}
}

func TestCounterPositionSurvivesReopen(t *testing.T) {
	sqliteOnly(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cf.db")
	s, err := Open(ctx, path, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for range 4 {
		p, _ := s.Next(ctx, "rr", 3)
		got = append(got, p)
	}
	s.Close()
	s = openAt(t, path, testOptions())
	for range 3 {
		p, _ := s.Next(ctx, "rr", 3)
		got = append(got, p)
	}
	if fmt.Sprint(got) != "[0 1 2 0 1 2 0]" {
		t.Errorf("positions = %v", got)
	}
	if n, _ := s.Counter(ctx, "rr"); n != 7 {
		t.Errorf("counter = %d", n)
	}
	if p, _ := s.Next(ctx, "other", 3); p != 0 {
		t.Errorf("a new key starts at %d", p)
	}
}

func TestCountersAreSharedEvenlyBetweenTwoProcesses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cf.db")
	s := openAt(t, path, testOptions())
	const each, n = 400, 4

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=counter", "CHILD_DB="+path, "CHILD_COUNT="+strconv.Itoa(each))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("child: %q", lines.Text())
	}
	var seen [n]int
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range 4 {
		wg.Go(func() {
			for range each / 4 {
				p, err := s.Next(ctx, "rr", n)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[p]++
				mu.Unlock()
			}
		})
	}
	for lines.Scan() {
		p, err := strconv.Atoi(lines.Text())
		if err != nil || p < 0 || p >= n {
			t.Fatalf("child said %q", lines.Text())
		}
		mu.Lock()
		seen[p]++
		mu.Unlock()
	}
	wg.Wait()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	for p, c := range seen {
		if c != 2*each/n {
			t.Errorf("position %d handed out %d times, want %d (all: %v)", p, c, 2*each/n, seen)
		}
	}
}
