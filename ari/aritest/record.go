package aritest

import (
	"encoding/binary"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

const (
	sampleRate   = 8000
	wavHeaderLen = 44
	beepLength   = 250 * time.Millisecond
	frameMS      = 20
)

// knownFormats are the recording formats (file extensions) Asterisk knows.
var knownFormats = map[string]bool{
	"wav": true, "WAV": true, "wav49": true, "gsm": true, "ulaw": true, "ul": true,
	"alaw": true, "al": true, "sln": true, "sln16": true, "raw": true, "g722": true,
	"g729": true, "g723": true, "ilbc": true, "ogg": true, "siren7": true, "siren14": true,
}

// liveRecordingJSON is the ARI LiveRecording model.
type liveRecordingJSON struct {
	Name            string `json:"name"`
	Format          string `json:"format"`
	State           string `json:"state"`
	TargetURI       string `json:"target_uri"`
	Duration        *int   `json:"duration,omitempty"`
	TalkingDuration *int   `json:"talking_duration,omitempty"`
	SilenceDuration *int   `json:"silence_duration,omitempty"`
	Cause           string `json:"cause,omitempty"`
}

type storedRecordingJSON struct {
	Name   string `json:"name"`
	Format string `json:"format"`
}

type endReason int

const (
	endSilence endReason = iota // 'S': maxSilenceSeconds of silence after speech
	endMaxDuration
	endDTMF
	endStop       // POST /recordings/live/{name}/stop
	endCancel     // DELETE /recordings/live/{name}: the file is discarded
	endHangup     // the channel (or the bridge recorder) went away
	endWriteError // the file could not be written (a full disk)
)

// recording follows res_stasis_recording and ast_play_and_record: the
// caller's audio is modelled as Talk of speech then silence.
type recording struct {
	s           *Server
	name        string
	format      string
	target      string
	ch          *channel
	br          *bridge
	maxDur      int
	maxSil      int
	ifExists    string
	beep        bool
	terminateOn string
	state       string // queued recording done failed
	disregarded bool
	audioStart  time.Time
	talk        time.Duration // simulated speech at the start; < 0: none; bridges: always speech
	planned     time.Duration
	plannedWhy  endReason
	timer       *timer
	duration    *int
	talking     *int
	silence     *int
	cause       string
	ended       bool
	writeFailed bool
}

func (r *recording) json() liveRecordingJSON {
	return liveRecordingJSON{
		Name:            r.name,
		Format:          r.format,
		State:           r.state,
		TargetURI:       r.target,
		Duration:        r.duration,
		TalkingDuration: r.talking,
		SilenceDuration: r.silence,
		Cause:           r.cause,
	}
}

func (r *recording) emit(typ string) {
	post := []kv{{"recording", r.json()}}
	if r.ch != nil {
		r.s.chanEventLocked(r.ch, typ, nil, post)
	} else {
		r.s.bridgeEventLocked(r.br, typ, post, r.br.lat)
	}
}

func (r *recording) terminates(digit string) bool {
	switch r.terminateOn {
	case "", "none":
		return false
	case "any":
		return strings.Contains("#*0123456789abcdABCD", digit)
	}
	return r.terminateOn == digit
}

func (r *recording) start() {
	s := r.s
	if r.disregarded {
		r.cleanup()
		return
	}
	if r.ch != nil && r.ch.bridge != nil {
		r.state = "failed"
		r.cause = "Cannot record channel while in bridge"
		r.emit("RecordingFailed")
		r.cleanup()
		return
	}
	if r.ch != nil && r.ch.snap.State != "Up" {
		// Recording answers the channel first (ast_auto_answer).
		s.setStateLocked(r.ch, "Up")
	}
	r.state = "recording"
	r.emit("RecordingStarted")
	if r.ch != nil {
		r.ch.rec = r
		if cl := r.ch.caller; cl != nil {
			cl.recs = append(cl.recs, r.name)
			cl.notifyLocked()
		}
	}
	var beep time.Duration
	if r.beep {
		beep = beepLength
	}
	r.audioStart = time.Now().Add(s.sim(beep))
	if err := s.openRecordingFile(r); err != nil {
		// Asterisk 20 ignores what ast_play_and_record_full returns
		// (res/stasis_recording.c, record_file): a file it cannot write
		// ends the recording at once, reported finished with no audio.
		s.logf("recording %s: %v", r.name, err)
		r.writeFailed = true
		s.finishRecordingLocked(r, endWriteError)
		return
	}

	// When does the recording end on its own?
	r.planned = -1
	if r.maxSil > 0 && r.br == nil {
		t := r.talk
		if t < 0 {
			t = 0
		}
		// ast_dsp counts silence in 20 ms frames and stops once it exceeds
		// maxSilence.
		r.planned = t + time.Duration(r.maxSil)*time.Second + frameMS*time.Millisecond
		r.plannedWhy = endSilence
	}
	if r.maxDur > 0 {
		d := time.Duration(r.maxDur) * time.Second
		if r.planned < 0 || d < r.planned {
			r.planned = d
			r.plannedWhy = endMaxDuration
		}
	}
	if r.planned >= 0 {
		r.timer = s.afterLocked(s.sim(beep+r.planned), func() {
			r.timer = nil
			if !r.ended && r.state == "recording" {
				s.finishRecordingLocked(r, r.plannedWhy)
			}
		})
	}
	s.logf("recording %s started on %s", r.name, r.target)
}

func (r *recording) abort(running bool) {
	if running && r.state == "recording" {
		r.s.finishRecordingLocked(r, endHangup)
		return
	}
	r.ended = true
	r.cleanupMaps()
}

func (r *recording) cleanupMaps() {
	s := r.s
	if s.liveRecs[r.name] == r {
		delete(s.liveRecs, r.name)
	}
	if r.ch != nil && r.ch.rec == r {
		r.ch.rec = nil
	}
	if r.br != nil {
		for i, x := range r.br.recs {
			if x == r {
				r.br.recs = append(r.br.recs[:i:i], r.br.recs[i+1:]...)
				break
			}
		}
	}
}

// cleanup forgets the recording and lets the channel's queue go on.
func (r *recording) cleanup() {
	r.ended = true
	r.s.stopTimerLocked(r.timer)
	r.timer = nil
	r.cleanupMaps()
	if r.ch != nil {
		r.ch.q.done(r, r.ch.alive)
	}
}

// finishRecordingLocked ends a recording the way ast_play_and_record does:
// the reported duration is the audio written, reduced by the trailing
// silence beyond 200 ms, and the file itself loses that trailing silence
// when the recording ended by silence, DTMF or maxDurationSeconds.
func (s *Server) finishRecordingLocked(r *recording, why endReason) {
	if r.ended || r.state != "recording" {
		return
	}
	var T time.Duration
	if why == endWriteError {
		T = 0
	} else if (why == endSilence || why == endMaxDuration) && r.planned >= 0 {
		T = r.planned
	} else {
		T = s.simSince(r.audioStart)
		if T < 0 {
			T = 0
		}
	}
	// Audio is written in whole frames.
	T = T / (frameMS * time.Millisecond) * (frameMS * time.Millisecond)
	duration := int(T / time.Second)
	fileLen := T
	talk := r.talk
	if r.br != nil {
		talk = T
	}
	if talk < 0 {
		talk = 0
	}
	if r.maxSil > 0 {
		dspsilence := 0
		if T > talk {
			dspsilence = int((T - talk) / time.Millisecond)
			dspsilence -= dspsilence % frameMS
		}
		energy := duration
		if dspsilence > 0 {
			energy -= (dspsilence - 200) / 1000
			duration -= (dspsilence - 200) / 1000
		}
		energy = max(energy, 0)
		duration = max(duration, 0)
		if why != endStop && why != endCancel && why != endHangup && dspsilence > 0 {
			fileLen -= time.Duration(dspsilence-200) * time.Millisecond
		}
		silence := duration - energy
		r.talking, r.silence = &energy, &silence
	}
	r.state = "done"
	if why == endCancel {
		s.removeStoredFiles(r.name)
	} else if why != endWriteError {
		if err := s.writeRecordingFile(r, fileLen, talk); err != nil {
			// The disk filled up during the recording: what Asterisk
			// reports is what it managed to write, here nothing.
			s.logf("recording %s: %v", r.name, err)
			duration = 0
			if r.talking != nil {
				zero, zero2 := 0, 0
				r.talking, r.silence = &zero, &zero2
			}
		}
	}
	r.duration = &duration
	r.emit("RecordingFinished")
	s.logf("recording %s finished: duration %d", r.name, duration)
	r.cleanup()
}

func (s *Server) recordingPath(name, format string) string {
	return filepath.Join(s.recDir, filepath.FromSlash(name)+"."+format)
}

// validRecordingName rejects names escaping the recordings directory.
func (s *Server) validRecordingName(name string) bool {
	p := filepath.Clean(filepath.Join(s.recDir, filepath.FromSlash(name)))
	rel, err := filepath.Rel(s.recDir, p)
	return err == nil && rel != "." && !strings.HasPrefix(rel, "..")
}

// storedPath finds the file of a stored recording, whatever its format.
func (s *Server) storedPath(name string) (string, bool) {
	if name == "" || !s.validRecordingName(name) {
		return "", false
	}
	matches, _ := filepath.Glob(filepath.Join(s.recDir, filepath.FromSlash(name)) + ".*")
	sort.Strings(matches)
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil && fi.Mode().IsRegular() {
			return m, true
		}
	}
	return "", false
}

func (s *Server) removeStoredFiles(name string) bool {
	removed := false
	for {
		p, ok := s.storedPath(name)
		if !ok {
			return removed
		}
		if os.Remove(p) != nil {
			return removed
		}
		removed = true
	}
}

func (s *Server) listStored() []storedRecordingJSON {
	out := []storedRecordingJSON{}
	_ = filepath.WalkDir(s.recDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(s.recDir, p)
		if err != nil {
			return nil
		}
		rel = filepath.ToSlash(rel)
		dot := strings.LastIndex(rel, ".")
		if dot <= 0 || strings.HasPrefix(filepath.Base(rel), ".") {
			return nil
		}
		out = append(out, storedRecordingJSON{Name: rel[:dot], Format: rel[dot+1:]})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// writeRecordingFile writes fileLen of audio: a tone while the caller
// talks, silence after. WAV files get Asterisk's 44-byte RIFF header;
// other formats hold raw 16-bit samples.
func (s *Server) writeRecordingFile(r *recording, fileLen, talk time.Duration) error {
	n := int(fileLen * sampleRate / time.Second)
	nTalk := int(talk * sampleRate / time.Second)
	pcm := make([]byte, 2*n)
	for i := 0; i < n && i < nTalk; i++ {
		v := int16(8000 * math.Sin(2*math.Pi*440*float64(i)/sampleRate))
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(v))
	}
	path := s.recordingPath(r.name, r.format)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	isWav := strings.EqualFold(r.format, "wav")
	if r.ifExists == "append" {
		if old, err := os.ReadFile(path); err == nil {
			if isWav && len(old) >= wavHeaderLen {
				old = old[wavHeaderLen:]
			}
			pcm = append(old, pcm...)
		}
	}
	var data []byte
	if isWav {
		data = wavFile(pcm)
	} else {
		data = pcm
	}
	return os.WriteFile(path, data, 0o644)
}

// openRecordingFile creates the recording's file as ast_writefile does,
// with its header and a first frame, so a full disk shows at once.
func (s *Server) openRecordingFile(r *recording) error {
	path := s.recordingPath(r.name, r.format)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if r.ifExists == "append" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		return f.Close()
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	data := make([]byte, 2*sampleRate*frameMS/1000)
	if strings.EqualFold(r.format, "wav") {
		data = wavFile(data)
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr != nil {
		return werr
	}
	return cerr
}

// wavFile wraps 8 kHz 16-bit mono samples in a RIFF header.
func wavFile(pcm []byte) []byte {
	h := make([]byte, wavHeaderLen, wavHeaderLen+len(pcm))
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], uint32(36+len(pcm)))
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1)
	binary.LittleEndian.PutUint16(h[22:], 1)
	binary.LittleEndian.PutUint32(h[24:], sampleRate)
	binary.LittleEndian.PutUint32(h[28:], sampleRate*2)
	binary.LittleEndian.PutUint16(h[32:], 2)
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], uint32(len(pcm)))
	return append(h, pcm...)
}
