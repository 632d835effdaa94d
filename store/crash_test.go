package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// runChild is the helper process's main.
func runChild(mode string) int {
	ctx := context.Background()
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	opts := testOptions()
	switch mode {
	case "counter":
		s, err := Open(ctx, os.Getenv("CHILD_DB"), opts)
		if err != nil {
			return fail(err)
		}
		n, _ := strconv.Atoi(os.Getenv("CHILD_COUNT"))
		out := bufio.NewWriter(os.Stdout)
		fmt.Fprintln(out, "ready")
		out.Flush()
		for range n {
			p, err := s.Next(ctx, "rr", 4)
			if err != nil {
				return fail(err)
			}
			fmt.Fprintln(out, p)
		}
		out.Flush()
		if err := s.Close(); err != nil {
			return fail(err)
		}
		return 0

	case "voicemail", "voicemail-flush":
		// What a voicemail applet does: audio, then sidecar, then the
		// queued database write. The parent kills this process.
		dir := os.Getenv("CHILD_DIR")
		opts.QueueSize = 4
		// No group window: the writer takes what is queued and waits on
		// the lock, so the queue of 4 overflows into the spool file.
		opts.GroupWindow = -1
		s, err := Open(ctx, filepath.Join(dir, "cf.db"), opts)
		if err != nil {
			return fail(err)
		}
		name := os.Getenv("CHILD_VM")
		wav := filepath.Join(dir, "recordings", name+".wav")
		writeChildWAV(wav)
		vm := Voicemail{Recording: name, CallID: "1767225600.7", Mailbox: "tech", Workspace: "acme",
			Caller: "+15550007", Called: "+914430001234", Flow: "Acme Support", Step: "tech-vm",
			Duration: 2 * time.Second, Path: wav, Created: t0}
		if err := WriteVoicemailMeta(wav, vm); err != nil {
			return fail(err)
		}
		if err := s.SaveVoicemail(vm); err != nil {
			return fail(err)
		}
		for i := range 50 {
			s.RecordCall(sampleCall(fmt.Sprintf("k%d", i), t0, 8))
		}
		if mode == "voicemail-flush" {
			go s.Flush(ctx)
		}
		fmt.Println("ready", s.WriterStats().Spilled)
		select {} // until killed
	}
	return fail(fmt.Errorf("unknown mode %q", mode))
}

func writeChildWAV(path string) {
	os.MkdirAll(filepath.Dir(path), 0o700)
	hdr := []byte("RIFF\x24\x7d\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00data\x00\x7d\x00\x00")
	os.WriteFile(path, append(hdr, make([]byte, 32000)...), 0o600)
}

func TestVoicemailSurvivesACrashBeforeItsDatabaseWrite(t *testing.T) {
	sqliteOnly(t)
	cases := []struct {
		name string
		mode string
		// locked: the database is busy for the whole life of the child,
		// so it dies with the voicemail still queued.
		locked bool
	}{
		{"killed with the write queued behind a lock", "voicemail", true},
		{"killed while flushing", "voicemail-flush", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			path := filepath.Join(dir, "cf.db")
			s, err := Open(ctx, path, testOptions()) // schema first: the child must not need the lock
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			var release func()
			if tc.locked {
				release = lockDB(t, path)
			}
			name := VoicemailName("tech", "1767225600.7", t0)
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"="+tc.mode, "CHILD_DIR="+dir, "CHILD_VM="+name)
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, _ := bufio.NewReader(out).ReadString('\n')
			var spilled int
			if _, err := fmt.Sscanf(line, "ready %d\n", &spilled); err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("child said %q", line)
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()
			if release != nil {
				release()
			}

			s = openAt(t, path, testOptions())
			flush(t, s) // the child's spooled records are replayed
			found, err := ScanVoicemailDir(filepath.Join(dir, "recordings"))
			if err != nil {
				t.Fatal(err)
			}
			added, err := s.ReconcileVoicemails(ctx, found)
			if err != nil {
				t.Fatal(err)
			}
			if tc.locked && added != 1 {
				t.Errorf("reconcile added %d, want the lost voicemail", added)
			}
			if n := count(t, s, `SELECT COUNT(*) FROM voicemails WHERE recording = ?`, name); n != 1 {
				t.Fatalf("voicemail rows = %d, want 1", n)
			}
			v, err := s.GetVoicemailByRecording(ctx, name, InWorkspaces("acme"))
			if err != nil {
				t.Fatal(err)
			}
			if v.Mailbox != "tech" || v.Caller != "+15550007" || v.Flow != "Acme Support" || v.Duration != 2*time.Second {
				t.Errorf("voicemail = %+v", v)
			}
			if tc.locked {
				// What overflowed the queue of 4 went to the spool file and
				// outlived the process.
				if n := count(t, s, `SELECT COUNT(*) FROM calls`); spilled == 0 || n < spilled {
					t.Errorf("calls replayed from the spool = %d, want the %d spilled", n, spilled)
				}
			}
		})
	}
}
