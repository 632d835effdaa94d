package aritest

import (
	"math/bits"
	"net/http"
	"sync/atomic"
	"time"
)

// Event-to-command latency as the fake sees it (Options.OnCommandLatency):
// the time from writing an event about a call to the event websocket to
// having read the client's next REST request about that call. With the
// client in another process this is an end-to-end figure: it includes the
// loopback websocket, the client's own work and the loopback HTTP request.
//
// A call is a group of channels and bridges: a channel, the channels
// created or originated with it as originator=, and the bridges those
// channels were added to. A request concerns the call of:
//   - the channel in its path: /channels/{id} and everything under it;
//   - the originator= of POST /channels and /channels/create;
//   - the bridge in its path, /bridges/{id}/..., and every channel= of
//     /bridges/{id}/addChannel and removeChannel;
//   - the channel or bridge a playback (/playbacks/{id}/...) or live
//     recording (/recordings/live/{name}/...) was started on.
//
// Each event is measured at most once, against the first request about
// its call that the fake reads after writing it; a request that follows
// no new event of its call yields no sample. So a request made by a timer
// (a menu timeout, a ring timeout) counts from the call's latest event,
// however old, as the client-side measure (ari.Options.OnLatency) does.

// cmdGroup is a call for Options.OnCommandLatency, under Server.mu.
type cmdGroup struct {
	members []*latTracker
	seen    int64 // unix nanos of the last event measured
}

func (lt *latTracker) group() *cmdGroup {
	if lt.cmd == nil {
		lt.cmd = &cmdGroup{members: []*latTracker{lt}}
	}
	return lt.cmd
}

// join puts lt's call into the call of to.
func (lt *latTracker) join(to *latTracker) {
	g, h := to.group(), lt.group()
	if g == h {
		return
	}
	if len(h.members) > len(g.members) {
		g, h = h, g
	}
	for _, m := range h.members {
		m.cmd = g
		g.members = append(g.members, m)
	}
	g.seen = max(g.seen, h.seen)
}

// stampRing holds when the last few events about a channel or bridge were
// written. The writer stamps an event just before writing it, so a burst
// about one channel can stamp later events before the client's answer to
// the first one arrives; the ring still has the stamp that answer follows.
type stampRing struct {
	n     atomic.Uint32
	times [8]atomic.Int64 // unix nanos
}

func (r *stampRing) add(t int64) {
	r.times[r.n.Add(1)%uint32(len(r.times))].Store(t)
}

// latest is the latest stamp not after limit, or 0.
func (r *stampRing) latest(limit int64) int64 {
	var out int64
	for i := range r.times {
		if t := r.times[i].Load(); t > out && t <= limit {
			out = t
		}
	}
	return out
}

// cmdTrackersLocked are the channels and bridges a request concerns.
func (s *Server) cmdTrackersLocked(segs []string, q *request) []*latTracker {
	var out []*latTracker
	channel := func(id string) {
		if c := s.channels[id]; c != nil {
			out = append(out, c.lat)
		}
	}
	switch {
	case len(segs) == 0:
	case segs[0] == "channels":
		if len(segs) >= 2 && segs[1] != "create" && segs[1] != "externalMedia" {
			channel(segs[1])
		}
		if q.has("originator") {
			channel(q.param("originator"))
		}
	case segs[0] == "bridges":
		if len(segs) >= 2 {
			if b := s.bridges[segs[1]]; b != nil {
				out = append(out, b.lat)
			}
		}
		if q.has("channel") {
			for _, id := range q.list("channel") {
				channel(id)
			}
		}
	case segs[0] == "playbacks":
		if len(segs) >= 2 {
			if p := s.playbacks[segs[1]]; p != nil && p.ch != nil {
				out = append(out, p.ch.lat)
			} else if p != nil && p.br != nil {
				out = append(out, p.br.lat)
			}
		}
	case segs[0] == "recordings":
		if len(segs) >= 3 && segs[1] == "live" {
			if r := s.liveRecs[segs[2]]; r != nil && r.ch != nil {
				out = append(out, r.ch.lat)
			} else if r != nil && r.br != nil {
				out = append(out, r.br.lat)
			}
		}
	}
	return out
}

// noteCommandLocked reports the latency of a request read at arrived,
// before its handler runs.
func (s *Server) noteCommandLocked(arrived time.Time, segs []string, q *request) {
	limit := arrived.UnixNano()
	for _, lt := range s.cmdTrackersLocked(segs, q) {
		g := lt.group()
		var last int64
		for _, m := range g.members {
			// an event written after the request arrived is not what it answers
			last = max(last, m.recent.latest(limit))
		}
		if last > g.seen {
			g.seen = last
			s.opts.OnCommandLatency(time.Duration(limit - last))
		}
	}
}

// noteDialLocked reports key-to-leg latency for a request that creates a
// channel on behalf of an originator who pressed a key.
func (s *Server) noteDialLocked(arrived time.Time, segs []string, q *request) {
	if q.r.Method != http.MethodPost || len(segs) == 0 || segs[0] != "channels" ||
		len(segs) > 2 || len(segs) == 2 && segs[1] != "create" || !q.has("originator") {
		return
	}
	orig := s.channels[q.param("originator")]
	if orig == nil {
		return
	}
	if t := orig.lat.dtmf.Swap(0); t != 0 && t <= arrived.UnixNano() {
		s.opts.OnDialLatency(time.Duration(arrived.UnixNano() - t))
	}
}

// linkCommandLocked, after the handler, adds a created or originated
// channel to its originator's call, and a bridge to the call of the first
// channel added to it.
func (s *Server) linkCommandLocked(segs []string, q *request, rep *reply) {
	if rep == nil || rep.code/100 != 2 || len(segs) == 0 {
		return
	}
	switch segs[0] {
	case "channels":
		orig := s.channels[q.param("originator")]
		if orig == nil || q.r.Method != http.MethodPost || len(segs) > 2 {
			return
		}
		id := q.param("channelId")
		if cj, ok := rep.body.(channelJSON); ok {
			id = cj.ID
		}
		if c := s.channels[id]; c != nil && c != orig {
			c.lat.join(orig.lat)
		}
	case "bridges":
		if len(segs) != 3 || segs[2] != "addChannel" {
			return
		}
		b := s.bridges[segs[1]]
		if b == nil || b.lat.cmd != nil && len(b.lat.cmd.members) > 1 {
			return
		}
		for _, id := range q.list("channel") {
			if c := s.channels[id]; c != nil {
				b.lat.join(c.lat)
				return
			}
		}
	}
}

// LatencyRecorder is a histogram of durations with bounded memory, safe for
// concurrent use; its Record method fits Options.OnCommandLatency. Buckets
// are log-linear (32 per power of two), so a percentile is within about 3%
// of the exact value. The zero value is ready to use.
type LatencyRecorder struct {
	count   atomic.Uint64
	sum     atomic.Int64
	max     atomic.Int64
	buckets [latBuckets]atomic.Uint64
}

const (
	latSubBits = 5
	latSub     = 1 << latSubBits // buckets per power of two
	latBuckets = (64 - latSubBits + 1) * latSub
)

// latBucket is the bucket of n nanoseconds: exact below 2·latSub, then
// latSub buckets per power of two.
func latBucket(n uint64) int {
	if n < 2*latSub {
		return int(n)
	}
	shift := bits.Len64(n) - latSubBits - 1
	return (shift+1)*latSub + int(n>>shift) - latSub
}

// latBucketMid is the middle of a bucket's range, in nanoseconds.
func latBucketMid(i int) uint64 {
	if i < 2*latSub {
		return uint64(i)
	}
	shift := i/latSub - 1
	lo := uint64(i%latSub+latSub) << shift
	return lo + (uint64(1)<<shift)/2
}

// Record adds one sample; negative durations count as zero.
func (r *LatencyRecorder) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	r.buckets[latBucket(uint64(d))].Add(1)
	r.count.Add(1)
	r.sum.Add(int64(d))
	for {
		m := r.max.Load()
		if int64(d) <= m || r.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// Count is the number of samples.
func (r *LatencyRecorder) Count() int { return int(r.count.Load()) }

// Max is the largest sample.
func (r *LatencyRecorder) Max() time.Duration { return time.Duration(r.max.Load()) }

// Mean is the average sample (0 without samples).
func (r *LatencyRecorder) Mean() time.Duration {
	n := r.count.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(r.sum.Load() / int64(n))
}

// Percentiles returns, for each p in [0, 1], the smallest recorded
// duration (to the bucket's precision) that at least a share p of the
// samples do not exceed; zeros without samples. Samples recorded during
// the call may or may not be counted.
func (r *LatencyRecorder) Percentiles(ps ...float64) []time.Duration {
	out := make([]time.Duration, len(ps))
	var counts [latBuckets]uint64
	var total uint64
	for i := range r.buckets {
		counts[i] = r.buckets[i].Load()
		total += counts[i]
	}
	if total == 0 {
		return out
	}
	maxD := r.max.Load()
	for k, p := range ps {
		rank := uint64(p*float64(total) + 0.5)
		rank = max(rank, 1)
		rank = min(rank, total)
		var cum uint64
		for i, c := range counts {
			cum += c
			if cum >= rank {
				out[k] = time.Duration(min(int64(latBucketMid(i)), maxD))
				break
			}
		}
	}
	return out
}
