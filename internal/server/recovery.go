package server

import (
	"context"
	"io"
	"time"

	"github.com/rs/zerolog"

	"github.com/callflow/callflow/ari"
	"github.com/callflow/callflow/store"
)

// markInterrupted closes the calls an earlier process of this node left in
// progress (it was killed mid-call), once the records it spooled are
// written.
func markInterrupted(ctx context.Context, st *store.Store, node string, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := st.Flush(ctx); err != nil {
		log.Warn().Err(err).Msg("calls left in progress by an earlier run not checked: the database is busy")
		return
	}
	n, err := st.MarkInterrupted(ctx, node)
	if err != nil {
		log.Warn().Err(err).Msg("calls left in progress by an earlier run not checked")
		return
	}
	if n > 0 {
		log.Warn().Int("calls", n).Msg("calls an earlier run left in progress (it stopped without ending them) are marked interrupted")
	}
}

// reconcileVoicemails puts back voicemails whose database write was lost
// (a crash between the recording and the write, or a recording still going
// when the process died): Asterisk's stored recordings and the FastAGI
// recordings directory are the truth. Only recordings made since since
// are looked at (zero: all). A recording under a second long is what the
// voicemail step calls empty (or what a full disk left): it is no message.
// Messages of calls still in progress (inProgress) are being recorded: the
// voicemail step stores them when they end.
func reconcileVoicemails(ctx context.Context, st *store.Store, a *ari.App, agiDir string, since time.Time, inProgress func(callID string) bool, log zerolog.Logger) {
	recent := func(name string) bool {
		_, callID, at, ok := store.ParseVoicemailName(name)
		return ok && (since.IsZero() || !at.Before(since)) && !inProgress(callID)
	}
	var remote []string
	if a != nil {
		names, err := a.StoredRecordings(ctx)
		if err != nil {
			log.Warn().Err(err).Msg("reconcile: cannot list Asterisk's stored recordings")
		}
		for _, n := range names {
			if recent(n) {
				remote = append(remote, n)
			}
		}
	}
	var local []store.FoundRecording
	if agiDir != "" {
		if found, err := store.ScanVoicemailDir(agiDir); err == nil {
			for _, f := range found {
				if recent(f.Name) && f.Duration >= time.Second {
					local = append(local, f)
				}
			}
		}
	}
	if len(remote)+len(local) == 0 {
		return
	}
	known, err := st.KnownVoicemails(ctx, remote)
	if err != nil {
		log.Error().Err(err).Msg("reconcile voicemails")
		return
	}
	found := local
	for _, n := range remote {
		if known[n] {
			continue
		}
		d, err := storedDuration(ctx, a, n)
		if err != nil {
			log.Warn().Err(err).Str("recording", n).Msg("reconcile: stored recording unreadable")
			continue
		}
		if d < time.Second {
			log.Debug().Str("recording", n).Msg("reconcile: empty recording is no message")
			continue
		}
		found = append(found, store.FoundRecording{Name: n, Duration: d})
	}
	if len(found) == 0 {
		return
	}
	added, err := st.ReconcileVoicemails(ctx, found)
	if err != nil {
		log.Error().Err(err).Msg("reconcile voicemails")
		return
	}
	if added > 0 {
		log.Warn().Int("recovered", added).Msg("voicemails found in recordings but not in the database were put back")
	}
}

// storedDuration is the length of a stored recording: Asterisk stores
// 8 kHz 16-bit mono WAV behind a 44-byte header.
func storedDuration(ctx context.Context, a *ari.App, name string) (time.Duration, error) {
	rc, err := a.FetchRecording(ctx, name)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, io.LimitReader(rc, 512<<20))
	if err != nil {
		return 0, err
	}
	const header, bytesPerSecond = 44, 16000
	if n <= header {
		return 0, nil
	}
	return time.Duration(n-header) * time.Second / bytesPerSecond, nil
}

// recoverAtStart closes what an earlier process left open before any call
// is taken: its calls in progress, and voicemails it recorded but never
// stored (recordings still going when it died end later: see
// recoverPeriodically).
func (s *Server) recoverAtStart(ctx context.Context) {
	markInterrupted(ctx, s.store, s.cfg.NodeName(), s.log)
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	reconcileVoicemails(rctx, s.store, s.ari, s.cfg.RecordingsDir, time.Time{}, s.dispatcher.InProgress, s.reconcileLog())
	s.shareMissingAudio(rctx, time.Time{})
	s.syncSounds(rctx)
	warnLowDisk(s.log, s.disks)
}

// recoverPeriodically reconciles recent voicemails and checks free space
// every [calls] reconcile_interval until ctx ends.
func (s *Server) recoverPeriodically(ctx context.Context) {
	t := time.NewTicker(s.cfg.Calls.ReconcileInterval.D())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// Recent ones only: the start-up pass saw the rest.
			rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			since := time.Now().Add(-2 * time.Hour)
			reconcileVoicemails(rctx, s.store, s.ari, s.cfg.RecordingsDir, since, s.dispatcher.InProgress, s.reconcileLog())
			s.shareMissingAudio(rctx, since)
			s.syncSounds(rctx)
			cancel()
			warnLowDisk(s.log, s.disks)
		}
	}
}

func (s *Server) reconcileLog() zerolog.Logger {
	return s.log.With().Str("component", "reconcile").Logger()
}

// primaryDead closes the records of the calls a dead primary was running
// that nobody resumed (a standby's moved callers are recorded again under
// this node; its conversations are closed when they end).
func (s *Server) primaryDead(ctx context.Context, node string) {
	if node == "" || node == s.cfg.NodeName() {
		s.log.Warn().Msg("standby: the dead primary's node is unknown: its calls left in progress stay so until it starts again")
		return
	}
	markInterrupted(ctx, s.store, node, s.log.With().Str("primary_node", node).Logger())
}

// conversationOver closes the records of a conversation this process
// watched for an earlier one (or a dead primary).
func (s *Server) conversationOver(channels []string, ended time.Time) {
	if err := s.store.ConversationOver(channels, ended); err != nil {
		s.log.Warn().Err(err).Strs("channels", channels).Msg("the record of an adopted conversation not closed")
	}
}
