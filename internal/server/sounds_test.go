package server

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/callflow/callflow/config"
	"github.com/callflow/callflow/internal/pgtest"
	"github.com/callflow/callflow/speech"
	"github.com/callflow/callflow/web"
)

// The web's sounds settings come from the configuration: uploads in
// <sounds_dir>/callflow, previews from the flows' own speech engine.
func TestSoundOptionsFollowTheConfiguration(t *testing.T) {
	cfg := config.Default()
	if o := soundOptions(cfg, nil); o.Dir != "" || o.Speech != nil {
		t.Errorf("without sounds_dir: %+v", o)
	}
	cfg.SoundsDir = "/var/lib/asterisk/sounds"
	sp, err := speech.New(speech.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	o := soundOptions(cfg, sp)
	if o.Dir != "/var/lib/asterisk/sounds/callflow" || o.MaxLength != cfg.Sounds.MaxLength.D() || o.MaxBytes != 50<<20 || o.Speech != sp || o.SpeechDir != sp.Dir() {
		t.Errorf("options %+v", o)
	}
}

// On PostgreSQL a node that starts copies the sounds uploaded on another
// node into its own sounds directory, where its Asterisk finds them.
func TestNodeCopiesSoundsUploadedElsewhereAtStart(t *testing.T) {
	dsn := pgtest.Database(t, "sounds")
	sounds := t.TempDir()
	onDB := func(name string) func(*config.Config) {
		return func(c *config.Config) {
			c.Database, c.DataDir, c.Node.Name, c.SoundsDir = dsn, t.TempDir(), name, filepath.Join(sounds, name)
		}
	}
	a := startWith(t, harnessOptions{tweak: []func(*config.Config){onDB("node-a")}})
	want := bytes.Repeat([]byte("RIFF-wav-"), 500)
	if err := a.srv.Store().PutAudio(ctxT(t), web.SoundAudioName("acme", "welcome"), bytes.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	b := startWith(t, harnessOptions{tweak: []func(*config.Config){onDB("node-b")}})
	waitUntil(t, "node-b's copy of the sound", func() bool {
		got, err := os.ReadFile(filepath.Join(b.cfg.SoundsDir, "callflow", "acme", "welcome.wav"))
		return err == nil && bytes.Equal(got, want)
	})
}
