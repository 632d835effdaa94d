package server

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/callflow/callflow/store"
	"github.com/callflow/callflow/web"
)

// With PostgreSQL, a voicemail's audio is copied into the database as soon
// as it is saved, so that a node or box that is gone does not take the
// message with it and every node's inbox plays it. The local file stays as
// a cache. The reconcile pass at start and every interval copies what was
// missed (a full queue, the database away, a restart).

// shareNewAudio copies the audio of each new voicemail until ctx ends.
func (s *Server) shareNewAudio(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case vm := <-s.share:
			s.shareAudio(ctx, vm)
		}
	}
}

// shareAudio copies one voicemail's audio into the database, from the
// local copy, Asterisk's recordings directory or Asterisk itself.
func (s *Server) shareAudio(ctx context.Context, vm store.Voicemail) {
	log := s.reconcileLog().With().Str("recording", vm.Recording).Logger()
	if have, err := s.store.HasAudio(ctx, vm.Recording); err != nil || have {
		if err != nil {
			log.Warn().Err(err).Msg("cannot tell whether the message's audio is in the database; will retry")
		}
		return
	}
	audio := s.voicemailAudio()
	audio.st = nil // this node's own copies only
	rc, _, err := audio.open(ctx, vm)
	if err != nil {
		// Gone for good (an empty message) is not worth a warning at
		// every pass.
		ev := log.Warn()
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, web.ErrAudioNotFound) {
			ev = log.Debug()
		}
		ev.Err(err).Msg("message audio not copied into the database yet")
		return
	}
	defer rc.Close()
	if err := s.store.PutAudio(ctx, vm.Recording, rc); err != nil {
		log.Warn().Err(err).Msg("message audio not copied into the database yet")
		return
	}
	log.Debug().Msg("message audio copied into the database")
}

// shareMissingAudio copies the audio of voicemails since that the
// database lacks (all of them when since is zero).
func (s *Server) shareMissingAudio(ctx context.Context, since time.Time) {
	if s.share == nil {
		return
	}
	vms, _, err := s.store.ListVoicemails(ctx, store.VoicemailFilter{Scope: store.AllWorkspaces(), From: since, IncludeDeleted: true, Limit: 10000})
	if err != nil {
		log := s.reconcileLog()
		log.Warn().Err(err).Msg("cannot list voicemails to copy their audio")
		return
	}
	for _, vm := range vms {
		if ctx.Err() != nil {
			return
		}
		s.shareAudio(ctx, vm)
	}
}
