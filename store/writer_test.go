package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRecordCallIsWrittenWithStepsAndEvents(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	c := sampleCall("c1", t0, 3)
	c.Recording = "call-c1"
	c.Events = []CallEvent{
		{Kind: EventSMS, Step: "notify", At: t0.Add(time.Minute), Data: map[string]any{"to": "+15551234567", "body": "Thanks"}},
		{Kind: EventBid, Step: "bid", At: t0, Data: map[string]any{"buyer": "b1", "amount": 2.5, "won": true}},
	}
	if err := s.RecordCall(c); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	got, err := s.GetCall(ctx, "c1", AllWorkspaces())
	if err != nil {
		t.Fatal(err)
	}
	if got.Flow != c.Flow || got.Caller != c.Caller || !got.Started.Equal(c.Started) || !got.Ended.Equal(c.Ended) ||
		got.TalkTime != c.TalkTime || !got.Qualified || got.Abandoned || got.Vars["zip"] != "600001" || got.Tags[0] != "support" {
		t.Errorf("call read back = %+v", got)
	}
	if len(got.Steps) != 3 || got.Steps[0].Seq != 1 || got.Steps[2].Step != "step2" || got.Steps[1].Details["played"] != "sound:hello" {
		t.Errorf("steps = %+v", got.Steps)
	}
	if len(got.Events) != 2 || got.Events[0].Kind != EventSMS || got.Events[1].Data["won"] != true {
		t.Errorf("events = %+v", got.Events)
	}
	recs, err := s.CallRecordings(ctx, "c1")
	if err != nil || len(recs) != 1 || recs[0].Name != "call-c1" {
		t.Errorf("recordings = %+v, %v", recs, err)
	}

	// Recorded again (a retry, a replayed spool): one call, the new steps.
	c.Steps = c.Steps[:1]
	c.Outcome = "no_answer"
	if err := s.RecordCall(c); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveRecording(Recording{CallID: "c1", Name: "call-c1", Path: "/rec/call-c1.wav", Duration: time.Minute}); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	got, _ = s.GetCall(ctx, "c1", AllWorkspaces())
	if got.Outcome != "no_answer" || len(got.Steps) != 1 || count(t, s, `SELECT COUNT(*) FROM calls`) != 1 {
		t.Errorf("re-recorded call = %+v (%d steps)", got, len(got.Steps))
	}
	recs, _ = s.CallRecordings(ctx, "c1")
	if len(recs) != 1 || recs[0].Path != "/rec/call-c1.wav" || recs[0].Duration != time.Minute {
		t.Errorf("recordings = %+v", recs)
	}

	if _, err := s.GetCall(ctx, "c1", InWorkspaces("other")); !errors.Is(err, ErrNotFound) {
		t.Errorf("call of another workspace: %v, want ErrNotFound", err)
	}
	if err := s.RecordCall(CallRecord{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("call without id: %v", err)
	}
}

func TestWriterBatchesRecordsAndFlushWaitsForThem(t *testing.T) {
	sqliteOnly(t)
	opts := testOptions()
	opts.MaxBatch = 50
	s := openTest(t, opts)
	path := s.Path()
	// Hold the lock so the queue builds up, then let one batch run.
	release := lockDB(t, path)
	const n = 500
	for i := range n {
		if err := s.RecordCall(sampleCall(fmt.Sprintf("b%d", i), t0, 2)); err != nil {
			t.Fatal(err)
		}
	}
	if d := s.QueueDepth(); d != n {
		t.Errorf("QueueDepth while locked = %d, want %d", d, n)
	}
	release()
	flush(t, s)
	if got := count(t, s, `SELECT COUNT(*) FROM calls`); got != n {
		t.Errorf("calls = %d, want %d", got, n)
	}
	if got := count(t, s, `SELECT COUNT(*) FROM call_steps`); got != 2*n {
		t.Errorf("steps = %d, want %d", got, 2*n)
	}
	st := s.WriterStats()
	if st.Written != n || st.Depth != 0 || s.QueueDepth() != 0 {
		t.Errorf("stats = %+v", st)
	}
	if st.Batches > uint64(n/opts.MaxBatch+2) {
		t.Errorf("%d transactions for %d records in batches of %d", st.Batches, n, opts.MaxBatch)
	}
	if st.Spilled != 0 {
		t.Errorf("spilled %d with a queue of 10,000", st.Spilled)
	}
}

func TestRecordsArrivingWithinTheGroupWindowShareOneCommit(t *testing.T) {
	opts := testOptions()
	opts.GroupWindow = time.Hour // only a flush, a full batch or Close ends it
	opts.MaxBatch = 4
	path := filepath.Join(t.TempDir(), "callflow.db")
	s := openAt(t, path, opts)
	for i := range 3 {
		if err := s.RecordCall(sampleCall(fmt.Sprintf("w%d", i), t0, 1)); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, s) // ends the window at once
	if st := s.WriterStats(); st.Written != 3 || st.Batches != 1 {
		t.Errorf("after a flush: %+v, want 3 records in one commit", st)
	}
	// A full batch does not wait for the window either.
	for i := range opts.MaxBatch {
		s.RecordCall(sampleCall(fmt.Sprintf("x%d", i), t0, 1))
	}
	for s.WriterStats().Written < uint64(3+opts.MaxBatch) {
		time.Sleep(time.Millisecond)
	}
	if st := s.WriterStats(); st.Batches != 2 {
		t.Errorf("a full batch: %+v, want it in one more commit", st)
	}
	// Close writes what waits in an open window.
	s.RecordCall(sampleCall("last", t0, 1))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openAnother(t, path, testOptions())
	if got := count(t, s2, `SELECT COUNT(*) FROM calls`); got != 3+opts.MaxBatch+1 {
		t.Errorf("calls after Close = %d, want %d", got, 3+opts.MaxBatch+1)
	}
}

func TestWriterWritesRecordsInQueueOrder(t *testing.T) {
	sqliteOnly(t)
	opts := testOptions()
	opts.MaxBatch = 64
	s := openTest(t, opts)
	release := lockDB(t, s.Path())
	for i := range 256 {
		s.RecordCall(sampleCall(fmt.Sprintf("g%d", i), t0, 1))
	}
	release()
	flush(t, s)
	if got := count(t, s, `SELECT COUNT(*) FROM calls`); got != 256 {
		t.Fatalf("calls = %d", got)
	}
	var firstRow string
	s.r.QueryRow(`SELECT id FROM calls ORDER BY rowid LIMIT 1`).Scan(&firstRow)
	if firstRow != "g0" {
		t.Errorf("first written = %s, want g0 (queue order)", firstRow)
	}
}

func TestQueueOverflowNeverDropsRecords(t *testing.T) {
	sqliteOnly(t)
	cases := []struct {
		name      string
		spoolPath func(dir string) string
		wantFile  bool
	}{
		{"spills to the spool file", func(string) string { return "" }, true},
		{"spills to memory when the spool file is unusable", func(dir string) string { return filepath.Join(dir, "missing", "spool") }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := testOptions()
			opts.QueueSize = 4
			opts.MaxBatch = 3
			opts.SpoolPath = tc.spoolPath(dir)
			s := openAt(t, filepath.Join(dir, "cf.db"), opts)
			release := lockDB(t, s.Path())

			const n = 300
			for i := range n {
				var err error
				if i%3 == 0 {
					err = s.SaveVoicemail(Voicemail{Recording: fmt.Sprintf("vm-m-c%d-1", i), Mailbox: "m"})
				} else {
					err = s.RecordCall(sampleCall(fmt.Sprintf("o%d", i), t0, 1))
				}
				if err != nil {
					t.Fatalf("enqueue %d: %v", i, err)
				}
			}
			st := s.WriterStats()
			if st.Spilled < uint64(n-opts.QueueSize-opts.MaxBatch) {
				t.Errorf("spilled %d of %d with a queue of %d", st.Spilled, n, opts.QueueSize)
			}
			spool := s.Path() + "-spool.jsonl"
			if info, err := os.Stat(spool); tc.wantFile && (err != nil || info.Size() == 0) {
				t.Errorf("spool file: %v, %v", info, err)
			}
			waitFor(t, "a retry on the locked database", func() bool { return s.WriterStats().Retries > 0 })
			if got := count(t, s, `SELECT COUNT(*) FROM calls`); got != 0 {
				t.Errorf("%d calls written through a held lock", got)
			}

			release()
			flush(t, s)
			calls := count(t, s, `SELECT COUNT(*) FROM calls`)
			vms := count(t, s, `SELECT COUNT(*) FROM voicemails`)
			if calls != n-n/3 || vms != n/3 {
				t.Errorf("written %d calls + %d voicemails, want %d + %d", calls, vms, n-n/3, n/3)
			}
			if st := s.WriterStats(); st.Written != n || st.Depth != 0 || st.Rejected != 0 {
				t.Errorf("stats after drain = %+v", st)
			}
			if info, err := os.Stat(spool); tc.wantFile && (err != nil || info.Size() != 0) {
				t.Errorf("spool not truncated after draining: %v, %v", info, err)
			}

			// Drained: new records take the queue again.
			before := s.WriterStats().Spilled
			s.RecordCall(sampleCall("after", t0, 1))
			flush(t, s)
			if s.WriterStats().Spilled != before {
				t.Errorf("record spilled after the overflow drained")
			}
		})
	}
}

func TestWriterRetriesWhileTheDatabaseIsBusy(t *testing.T) {
	sqliteOnly(t)
	ctx := context.Background()
	s := openTest(t, testOptions())
	release := lockDB(t, s.Path())
	for i := range 10 {
		s.SaveVoicemail(Voicemail{Recording: fmt.Sprintf("vm-sales-c%d-%d", i, i), Mailbox: "sales", Workspace: "acme"})
	}
	waitFor(t, "retries", func() bool { return s.WriterStats().Retries >= 2 })

	// A synchronous write waits too (busy_timeout, then back-off).
	got := make(chan error, 1)
	go func() {
		_, err := s.Next(ctx, "busy", 3)
		got <- err
	}()
	release()
	if err := <-got; err != nil {
		t.Errorf("Next after the lock was released: %v", err)
	}
	flush(t, s)
	if n := count(t, s, `SELECT COUNT(*) FROM voicemails`); n != 10 {
		t.Errorf("voicemails = %d, want 10", n)
	}
}

func TestCloseOnALockedDatabaseLeavesWritesInTheSpoolForTheNextOpen(t *testing.T) {
	sqliteOnly(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "cf.db")
	opts := testOptions()
	opts.CloseTimeout = 100 * time.Millisecond
	s, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	release := lockDB(t, path)
	for i := range 25 {
		s.RecordCall(sampleCall(fmt.Sprintf("z%d", i), t0, 2))
	}
	err = s.Close()
	if err == nil || !strings.Contains(err.Error(), "spool") {
		t.Fatalf("Close on a locked database = %v, want an error naming the spool", err)
	}
	if err := s.RecordCall(sampleCall("late", t0, 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("RecordCall after Close = %v, want ErrClosed", err)
	}
	release()
	checkNoGoroutines(t)

	s2 := openAt(t, path, testOptions())
	flush(t, s2)
	if n := count(t, s2, `SELECT COUNT(*) FROM calls`); n != 25 {
		t.Errorf("calls after reopen = %d, want 25", n)
	}
}

func TestUnreadableSpoolLinesGoToTheRejectedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cf.db")
	spool := `{"kind":"call","call":{"id":"ok1","started":"2026-03-02T09:30:00Z"}}
not json at all
{"kind":"call","call":{"id":"ok2","started":"2026-03-02T09:31:00Z"}}
{"kind":"call","call":{"id":"torn`
	if err := os.WriteFile(path+"-spool.jsonl", []byte(spool), 0o600); err != nil {
		t.Fatal(err)
	}
	s := openAt(t, path, testOptions())
	flush(t, s)
	if st := s.WriterStats(); st.Enqueued != 4 || st.Written != 4 {
		t.Errorf("stats = %+v, want the 4 spooled lines settled", st)
	}
	if n := count(t, s, `SELECT COUNT(*) FROM calls`); n != 2 {
		t.Errorf("calls = %d, want 2", n)
	}
	rejected, err := os.ReadFile(path + "-rejected.jsonl")
	if err != nil || strings.Count(string(rejected), "\n") != 2 || !strings.Contains(string(rejected), "not json at all") {
		t.Errorf("rejected file = %q, %v", rejected, err)
	}
	if st := s.WriterStats(); st.Rejected != 2 {
		t.Errorf("rejected = %d", st.Rejected)
	}
}

func TestRecordsTheDatabaseRefusesAreSetAsideNotRetriedForever(t *testing.T) {
	s := openTest(t, testOptions())
	// A func cannot be encoded: that record can never be written.
	bad := sampleCall("bad", t0, 1)
	bad.Steps[0].Details = map[string]any{"x": func() {}}
	s.RecordCall(sampleCall("good1", t0, 1))
	s.RecordCall(bad)
	s.RecordCall(sampleCall("good2", t0, 1))
	flush(t, s)
	if n := count(t, s, `SELECT COUNT(*) FROM calls`); n != 2 {
		t.Errorf("calls = %d, want the two good ones", n)
	}
	if st := s.WriterStats(); st.Rejected != 1 || st.Depth != 0 {
		t.Errorf("stats = %+v", st)
	}
	if _, err := os.Stat(s.rejectedPath()); err != nil {
		t.Errorf("rejected file: %v", err)
	}
}

func TestFlushHonoursItsContext(t *testing.T) {
	sqliteOnly(t)
	s := openTest(t, testOptions())
	release := lockDB(t, s.Path())
	s.RecordCall(sampleCall("f1", t0, 1))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Flush(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Flush = %v, want context.Canceled", err)
	}
	release()
	flush(t, s)
}

func TestCloseStopsEveryGoroutine(t *testing.T) {
	before := len(storeGoroutines())
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "cf.db"), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		s.RecordCall(sampleCall(fmt.Sprintf("g%d", i), t0, 1))
	}
	if _, _, err := s.ListCalls(context.Background(), CallFilter{Scope: AllWorkspaces()}); err != nil {
		t.Fatal(err)
	}
	if len(storeGoroutines()) <= before {
		t.Fatal("no writer goroutine seen while open")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	checkNoGoroutines(t)
}
