package server

import (
	"context"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/config"
	"github.com/callflow/callflow/speech"
	"github.com/callflow/callflow/web"
)

// soundOptions are the web's sounds settings: uploads into
// <sounds_dir>/callflow, previews by the flows' own text to speech.
func soundOptions(cfg *config.Config, sp applets.Speaker) web.SoundOptions {
	o := web.SoundOptions{Dir: cfg.SoundsUploadDir(), MaxLength: cfg.Sounds.MaxLength.D(), MaxBytes: int64(cfg.Sounds.MaxUploadMB) << 20}
	if e, ok := sp.(*speech.Engine); ok {
		o.Speech, o.SpeechDir = e, e.Dir()
	}
	return o
}

// syncSounds makes this node's uploaded sounds match the database's
// (PostgreSQL): sounds uploaded on another node are copied in, so that
// Asterisk here plays them; sounds deleted there are removed here.
func (s *Server) syncSounds(ctx context.Context) {
	dir := s.cfg.SoundsUploadDir()
	if !s.store.SharesAudio() || dir == "" {
		return
	}
	log := s.reconcileLog()
	res, err := web.SyncSounds(ctx, s.store, dir)
	if err != nil {
		log.Warn().Err(err).Msg("uploaded sounds not brought up to date with the database yet")
	}
	if res.Copied > 0 || res.Removed > 0 {
		log.Info().Int("copied", res.Copied).Int("removed", res.Removed).Msg("uploaded sounds brought up to date with the database")
	}
}
