package aritest

import (
	"crypto/rand"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// playbackJSON is the ARI Playback model.
type playbackJSON struct {
	ID           string `json:"id"`
	MediaURI     string `json:"media_uri"`
	NextMediaURI string `json:"next_media_uri,omitempty"`
	TargetURI    string `json:"target_uri"`
	Language     string `json:"language"`
	State        string `json:"state"`
}

// playback follows res_stasis_playback: each media item is announced by
// PlaybackStarted; items end with PlaybackContinuing, the last one with
// PlaybackFinished. Items with an unsupported scheme (or a recording or
// number that cannot be played) are skipped without any final event.
type playback struct {
	s            *Server
	id           string
	medias       []string
	idx          int
	lang         string
	target       string
	ch           *channel
	br           *bridge
	state        string // queued playing continuing paused done failed canceled stopped
	controllable bool
	timer        *timer
	itemStart    time.Time     // real time the current item (re)started
	itemLeft     time.Duration // simulated time left of the current item when it (re)started
	infinite     bool
	ended        bool
}

type mediaKind int

const (
	mediaOK mediaKind = iota
	mediaMissing
	mediaBad
)

func uuid4() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (p *playback) stateString() string {
	switch p.state {
	case "stopped", "canceled", "complete":
		return "done"
	}
	return p.state
}

func (p *playback) json() playbackJSON {
	j := playbackJSON{
		ID:        p.id,
		MediaURI:  p.medias[p.idx],
		TargetURI: p.target,
		Language:  p.lang,
		State:     p.stateString(),
	}
	if p.idx < len(p.medias)-1 {
		j.NextMediaURI = p.medias[p.idx+1]
	}
	return j
}

func (p *playback) emit(typ string) {
	post := []kv{{"playback", p.json()}}
	if p.ch != nil {
		p.s.chanEventLocked(p.ch, typ, nil, post)
	} else {
		p.s.bridgeEventLocked(p.br, typ, post, p.br.lat)
	}
}

func (p *playback) queue() (*opQueue, func() bool) {
	if p.ch != nil {
		return &p.ch.q, p.ch.alive
	}
	return &p.br.q, p.br.alive
}

func (p *playback) start() {
	if p.state == "canceled" {
		// A playback stopped while queued is reported done when its turn comes.
		p.emit("PlaybackFinished")
		p.end()
		return
	}
	p.idx = 0
	p.playItem()
}

// playItem plays the current item, skipping unplayable ones.
func (p *playback) playItem() {
	s := p.s
	for ; p.idx < len(p.medias); p.idx++ {
		media := p.medias[p.idx]
		p.state = "playing"
		p.emit("PlaybackStarted")
		if p.ch != nil && p.ch.caller != nil {
			cl := p.ch.caller
			cl.heard = append(cl.heard, media)
			cl.playStarted[media]++
			cl.notifyLocked()
		}
		kind, dur := s.classifyMediaLocked(media)
		switch kind {
		case mediaBad:
			s.logf("playback %s: unsupported media %q skipped silently", p.id, media)
			continue
		case mediaMissing:
			p.itemFinished(false)
			return
		}
		if strings.HasPrefix(media, "sound:") || strings.HasPrefix(media, "recording:") || strings.HasPrefix(media, "tone:") {
			p.controllable = true
		}
		p.infinite = dur < 0
		p.itemLeft = dur
		p.schedule()
		return
	}
	p.idx = len(p.medias) - 1
	p.end()
}

func (p *playback) schedule() {
	p.itemStart = time.Now()
	if p.infinite {
		return
	}
	p.timer = p.s.afterLocked(p.s.sim(p.itemLeft), func() {
		p.timer = nil
		if p.ended || (p.state != "playing" && p.state != "continuing") {
			return
		}
		p.itemFinished(true)
	})
}

func (p *playback) itemFinished(ok bool) {
	last := p.idx == len(p.medias)-1
	switch {
	case ok && last:
		p.state = "done"
	case ok:
		p.state = "continuing"
	case last:
		p.state = "failed"
	default:
		p.state = "continuing"
	}
	if p.state == "continuing" {
		p.emit("PlaybackContinuing")
		p.idx++
		p.playItem()
		return
	}
	p.emit("PlaybackFinished")
	p.end()
}

// end removes the playback and lets the target's queue go on.
func (p *playback) end() {
	if p.ended {
		return
	}
	p.ended = true
	p.s.stopTimerLocked(p.timer)
	p.timer = nil
	if p.s.playbacks[p.id] == p {
		delete(p.s.playbacks, p.id)
	}
	q, alive := p.queue()
	q.done(p, alive)
}

func (p *playback) abort(running bool) {
	if running && !p.ended && (p.state == "playing" || p.state == "continuing" || p.state == "paused") {
		// The channel hung up: the stream is interrupted and reported failed.
		p.state = "failed"
		p.emit("PlaybackFinished")
	}
	p.ended = true
	p.s.stopTimerLocked(p.timer)
	p.timer = nil
	if p.s.playbacks[p.id] == p {
		delete(p.s.playbacks, p.id)
	}
}

// stop implements DELETE /playbacks/{id}; it returns an HTTP error, if any.
func (p *playback) stop() *reply {
	switch p.state {
	case "queued":
		p.state = "canceled"
	case "playing", "continuing", "paused":
		if !p.controllable {
			return errReply(500, "Could not stop playback")
		}
		p.state = "stopped"
		p.emit("PlaybackFinished")
		p.end()
	}
	return nil
}

// control implements POST /playbacks/{id}/control.
func (p *playback) control(op string) *reply {
	switch p.state {
	case "playing", "continuing":
	case "paused":
		if op == "pause" {
			return nil
		}
		if op != "unpause" && op != "restart" {
			return errReply(409, fmt.Sprintf("Can only %s while media is playing", op))
		}
	case "queued":
		if op == "restart" {
			return nil
		}
		return errReply(409, fmt.Sprintf("Can only %s while media is playing", op))
	default:
		return errReply(409, fmt.Sprintf("Can only %s while media is playing", op))
	}
	if !p.controllable {
		return errReply(500, fmt.Sprintf("Could not %s playback", op))
	}
	s := p.s
	elapsed := s.simSince(p.itemStart)
	switch op {
	case "pause":
		s.stopTimerLocked(p.timer)
		p.timer = nil
		p.itemLeft -= elapsed
		p.state = "paused"
	case "unpause":
		if p.state == "paused" {
			p.state = "playing"
			p.emit("PlaybackStarted")
			p.schedule()
		}
	case "restart":
		s.stopTimerLocked(p.timer)
		_, p.itemLeft = s.classifyMediaLocked(p.medias[p.idx])
		p.state = "playing"
		p.schedule()
	case "forward", "reverse":
		if p.state == "paused" || p.infinite {
			return nil
		}
		s.stopTimerLocked(p.timer)
		left := p.itemLeft - elapsed
		if op == "forward" {
			left -= 3 * time.Second
		} else {
			left += 3 * time.Second
		}
		if left < 0 {
			left = 0
		}
		p.itemLeft = left
		p.schedule()
	}
	return nil
}

// classifyMediaLocked decides whether a media URI plays, fails as a missing
// file, or is silently skipped, and for how long it plays (-1: until stopped).
func (s *Server) classifyMediaLocked(media string) (mediaKind, time.Duration) {
	if s.missing[media] {
		return mediaMissing, 0
	}
	scheme, rest, _ := strings.Cut(media, ":")
	d, hasDur := s.opts.MediaDurations[media]
	if !hasDur {
		d = s.opts.DefaultMediaDuration
	}
	switch scheme {
	case "sound":
		if rest == "" {
			return mediaMissing, 0
		}
		return mediaOK, d
	case "recording":
		path, ok := s.storedPath(rest)
		if !ok {
			return mediaBad, 0
		}
		if !hasDur {
			if fi, err := os.Stat(path); err == nil {
				n := fi.Size()
				if strings.HasSuffix(path, ".wav") {
					n -= wavHeaderLen
				}
				d = time.Duration(n) * time.Second / (2 * sampleRate)
			}
		}
		return mediaOK, d
	case "number":
		if _, err := strconv.Atoi(strings.TrimSpace(leadingInt(rest))); err != nil {
			return mediaBad, 0
		}
		return mediaOK, d
	case "digits", "characters":
		return mediaOK, d
	case "tone":
		if !hasDur {
			d = -1
		}
		return mediaOK, d
	}
	return mediaBad, 0
}

// leadingInt is the integer prefix sscanf("%d") would read.
func leadingInt(s string) string {
	s = strings.TrimLeft(s, " ")
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}
