package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/speech"
)

// SoundOptions configure the sounds page: prompts uploaded per workspace,
// converted for Asterisk, played in the page, and a preview of text to
// speech.
type SoundOptions struct {
	// Dir holds the uploaded sounds, <Dir>/<workspace>/<name>.wav, in a
	// directory of Asterisk's sounds (<sounds_dir>/callflow). It is
	// callflow's own: with a shared database, files there that the
	// database lacks are removed. "" turns uploads off.
	Dir string
	// Media is how a flow names Dir to Asterisk: "callflow" makes
	// sound:callflow/acme/welcome. Default: Dir's last element.
	Media string
	// MaxLength is the longest sound accepted (default 5m).
	MaxLength time.Duration
	// MaxBytes is the largest file accepted (default 50 MB).
	MaxBytes int64
	// Convert makes {in} an 8 kHz 16-bit mono WAV {out}; nil is
	// speech.DefaultConvert (sox).
	Convert []string
	// Speech is the text to speech that flows' say steps use; nil: no
	// preview. SpeechDir is where it writes (previews are served only
	// from there).
	Speech    applets.Speaker
	SpeechDir string
}

const (
	defaultSoundLength = 5 * time.Minute
	defaultSoundBytes  = 50 << 20
	// soundConvertTimeout bounds one sox run.
	soundConvertTimeout = 2 * time.Minute
	// soundAudioPrefix names uploaded sounds in the database's audio.
	soundAudioPrefix = "sound/"
)

// soundNameRe is a sound's or a workspace's name on disk: one path
// element, nothing that climbs out or hides.
var soundNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// SoundAudioName is the name under which the database keeps an uploaded
// sound (PostgreSQL: every node plays it).
func SoundAudioName(workspace, name string) string {
	return soundAudioPrefix + workspace + "/" + name + ".wav"
}

func (o *SoundOptions) defaults() {
	if o.MaxLength <= 0 {
		o.MaxLength = defaultSoundLength
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = defaultSoundBytes
	}
	if o.Dir != "" {
		if abs, err := filepath.Abs(o.Dir); err == nil {
			o.Dir = abs
		}
		if o.Media == "" {
			o.Media = filepath.Base(o.Dir)
		}
	}
	if o.SpeechDir != "" {
		if abs, err := filepath.Abs(o.SpeechDir); err == nil {
			o.SpeechDir = abs
		}
	}
}

// soundView is one sound as the page lists it.
type soundView struct {
	Workspace string    `json:"workspace"`
	Name      string    `json:"name"`
	Media     string    `json:"use_as"` // what a flow plays: sound:callflow/acme/welcome
	Duration  float64   `json:"seconds"`
	Size      int64     `json:"bytes"`
	Modified  time.Time `json:"modified"`
	// Pending: the database has it, this node's directory not yet.
	Pending   bool   `json:"pending,omitempty"`
	CanManage bool   `json:"can_manage"`
	Audio     string `json:"audio"` // URL to listen to it
}

func (v soundView) Length() time.Duration { return time.Duration(v.Duration * float64(time.Second)) }

type soundPreview struct {
	Text  string
	Audio string
	Media string
}

type soundsData struct {
	Enabled    bool
	Dir        string
	Media      string
	Sounds     []soundView
	Workspaces []string // where the user may upload
	MaxLength  time.Duration
	MaxSize    string
	Speech     bool
	Preview    *soundPreview
	Text       string
	Message    string
	Error      string
	Form       struct{ Name, Workspace string }
	Shared     bool
}

// soundError is a refusal people read: what was wrong with the file.
type soundError struct {
	code int
	msg  string
}

func (e *soundError) Error() string { return e.msg }

// soundRoutes registers the sounds pages; New calls it (through routes)
// before serving, so the defaults it fills are set once.
func (s *Server) soundRoutes() {
	s.opts.Sounds.defaults()
	s.handle("GET /sounds", s.soundsPage)
	s.handle("POST /sounds", s.soundUploadForm)
	s.handle("POST /sounds/say", s.soundSayForm)
	s.handle("GET /sounds/say/{key}/audio", s.soundSayAudio)
	s.handle("GET /sounds/{ws}/{name}/audio", s.soundAudio)
	s.handle("POST /sounds/{ws}/{name}/delete", s.soundDeleteForm)
	s.handle("GET /api/sounds", s.apiSounds)
	s.handle("POST /api/sounds", s.apiSoundUpload)
	s.handle("POST /api/sounds/say", s.apiSoundSay)
	s.handle("GET /api/sounds/say/{key}/audio", s.soundSayAudio)
	s.handle("GET /api/sounds/{ws}/{name}/audio", s.soundAudio)
	s.handle("DELETE /api/sounds/{ws}/{name}", s.apiSoundDelete)
}

func isSoundUpload(r *http.Request) bool {
	return r.Method == http.MethodPost && (r.URL.Path == "/sounds" || r.URL.Path == "/api/sounds")
}

// bodyLimit is how large a request body may be: an upload's file, or
// maxBody.
func (s *Server) bodyLimit(r *http.Request) int64 {
	if isSoundUpload(r) {
		return s.opts.Sounds.MaxBytes + 1<<20 // the form's other fields
	}
	return maxBody
}

// refuseUpload answers an upload that is too large before anything reads
// it (the CSRF check would read the form), saying why; it reads the form
// of one that fits, spilling the file to disk rather than memory.
func (s *Server) refuseUpload(w http.ResponseWriter, r *http.Request, a *authInfo) bool {
	if !isSoundUpload(r) {
		return false
	}
	if r.ContentLength > s.bodyLimit(r) {
		msg := "the file is too large: the largest accepted is " + fmtSize(s.opts.Sounds.MaxBytes)
		if isAPI(r.URL.Path) {
			writeError(w, http.StatusRequestEntityTooLarge, msg)
			return true
		}
		r2 := r.WithContext(context.WithValue(r.Context(), authKey{}, a))
		s.renderSounds(w, r2, http.StatusRequestEntityTooLarge, soundsData{Error: msg})
		return true
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		_ = r.ParseMultipartForm(1 << 20) // errors show as a missing field
	}
	return false
}

// soundFile is where a workspace's sound lives, or "" when a name is
// not safe.
func (s *Server) soundFile(ws, name string) string {
	root := s.opts.Sounds.Dir
	if root == "" || !soundNameRe.MatchString(ws) || !soundNameRe.MatchString(name) {
		return ""
	}
	return filepath.Join(root, ws, name+".wav")
}

// inside reports whether path, symlinks resolved, is a file within dir:
// whatever a name or a link says, nothing outside is served.
func inside(dir, path string) bool {
	rd, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return false
	}
	rp, err := filepath.EvalSymlinks(path)
	if err != nil {
		return false
	}
	rel, err := filepath.Rel(rd, rp)
	return err == nil && rel != "." && !strings.HasPrefix(rel, "..") && !filepath.IsAbs(rel)
}

func (s *Server) soundMedia(ws, name string) string {
	return "sound:" + s.opts.Sounds.Media + "/" + ws + "/" + name
}

// listSounds lists the sounds in a's scope: this node's files, and with a
// shared database the ones stored there that this node lacks yet.
func (s *Server) listSounds(ctx context.Context, a *authInfo) ([]soundView, error) {
	root := s.opts.Sounds.Dir
	if root == "" {
		return nil, nil
	}
	seen := map[string]bool{}
	var out []soundView
	dirs, err := os.ReadDir(root)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("sounds: %w", err)
	}
	for _, d := range dirs {
		ws := d.Name()
		if !d.IsDir() || !soundNameRe.MatchString(ws) || !a.scope().Allows(ws) {
			continue
		}
		files, err := os.ReadDir(filepath.Join(root, ws))
		if err != nil {
			return nil, fmt.Errorf("sounds: %w", err)
		}
		for _, f := range files {
			name, ok := strings.CutSuffix(f.Name(), ".wav")
			if !ok || !f.Type().IsRegular() || !soundNameRe.MatchString(name) {
				continue
			}
			v := s.soundView(a, ws, name)
			if info, err := f.Info(); err == nil {
				v.Size, v.Modified = info.Size(), info.ModTime()
			}
			if wi, err := speech.CheckWAV(filepath.Join(root, ws, f.Name())); err == nil {
				v.Duration = wi.Duration.Seconds()
			}
			seen[ws+"/"+name] = true
			out = append(out, v)
		}
	}
	if s.st.SharesAudio() {
		stored, err := s.st.ListAudio(ctx, soundAudioPrefix)
		if err != nil {
			return nil, err
		}
		for _, e := range stored {
			ws, name, ok := splitSoundAudio(e.Name)
			if !ok || seen[ws+"/"+name] || !a.scope().Allows(ws) {
				continue
			}
			v := s.soundView(a, ws, name)
			v.Size, v.Modified, v.Pending = e.Size, time.Unix(0, e.Created), true
			// 8 kHz 16-bit mono after the 44-byte header
			v.Duration = float64(max(e.Size-44, 0)) / 16000
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Workspace != out[j].Workspace {
			return out[i].Workspace < out[j].Workspace
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

func (s *Server) soundView(a *authInfo, ws, name string) soundView {
	return soundView{Workspace: ws, Name: name, Media: s.soundMedia(ws, name), CanManage: a.canManage(ws),
		Audio: "/sounds/" + ws + "/" + name + "/audio"}
}

// splitSoundAudio reads "sound/<ws>/<name>.wav".
func splitSoundAudio(n string) (ws, name string, ok bool) {
	rest, ok := strings.CutPrefix(n, soundAudioPrefix)
	if !ok {
		return "", "", false
	}
	ws, file, ok := strings.Cut(rest, "/")
	name, isWAV := strings.CutSuffix(file, ".wav")
	if !ok || !isWAV || !soundNameRe.MatchString(ws) || !soundNameRe.MatchString(name) {
		return "", "", false
	}
	return ws, name, true
}

func (s *Server) soundsPage(w http.ResponseWriter, r *http.Request) {
	msg := map[string]string{"deleted": "Sound deleted."}[r.URL.Query().Get("msg")]
	s.renderSounds(w, r, http.StatusOK, soundsData{Message: msg})
}

func (s *Server) renderSounds(w http.ResponseWriter, r *http.Request, code int, d soundsData) {
	a := auth(r)
	o := s.opts.Sounds
	d.Enabled, d.Dir, d.Media, d.MaxLength, d.MaxSize = o.Dir != "", o.Dir, o.Media, o.MaxLength, fmtSize(o.MaxBytes)
	d.Speech, d.Shared = o.Speech != nil && a.isAdmin(), s.st.SharesAudio()
	list, err := s.listSounds(r.Context(), a)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	d.Sounds = list
	ws, err := s.manageableWorkspaces(r.Context(), a)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	for _, w := range ws {
		if soundNameRe.MatchString(w) {
			d.Workspaces = append(d.Workspaces, w)
		}
	}
	s.render(w, r, code, "sounds", "Sounds", d)
}

// soundUpload is one file to store as a sound.
type soundUpload struct {
	Workspace, Name string
	Replace         bool
	Filename        string // as the browser named it
	File            io.Reader
}

// formUpload reads an upload's fields from a multipart form.
func formUpload(r *http.Request) (soundUpload, func(), error) {
	in := soundUpload{Workspace: strings.TrimSpace(r.FormValue("workspace")), Name: strings.TrimSpace(r.FormValue("name")),
		Replace: truthy(r.FormValue("replace"))}
	f, hdr, err := r.FormFile("file")
	if err != nil {
		if errors.Is(err, http.ErrMissingFile) || errors.Is(err, http.ErrNotMultipart) {
			return in, func() {}, &soundError{http.StatusBadRequest, "choose a file to upload"}
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) || errors.Is(err, multipart.ErrMessageTooLarge) {
			return in, func() {}, &soundError{http.StatusRequestEntityTooLarge, "the file is too large"}
		}
		return in, func() {}, &soundError{http.StatusBadRequest, "the upload did not arrive whole: " + err.Error()}
	}
	in.File, in.Filename = f, filepath.Base(hdr.Filename)
	if in.Name == "" {
		in.Name = nameFromFile(in.Filename)
	}
	return in, func() { f.Close() }, nil
}

// nameFromFile suggests a sound name from an uploaded file's name:
// "Welcome Message.mp3" is "welcome-message".
func nameFromFile(file string) string {
	base := strings.TrimSuffix(file, filepath.Ext(file))
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(base) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_':
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	n := strings.Trim(b.String(), "-_")
	return n[:min(len(n), 64)]
}

// sniffAudio names the format a file's first bytes show: "wav", "mp3",
// "ogg", or "" for anything else.
func sniffAudio(head []byte) string {
	switch {
	case len(head) >= 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "WAVE":
		return "wav"
	case len(head) >= 4 && string(head[:4]) == "OggS":
		return "ogg"
	case len(head) >= 3 && string(head[:3]) == "ID3":
		return "mp3"
	case len(head) >= 2 && head[0] == 0xFF && head[1]&0xE0 == 0xE0 && head[1]&0x06 != 0:
		// an MPEG audio frame: 11 sync bits, a layer
		return "mp3"
	}
	return ""
}

// saveSound checks, converts and stores one upload for a.
func (s *Server) saveSound(ctx context.Context, a *authInfo, in soundUpload) (soundView, error) {
	o := s.opts.Sounds
	switch {
	case o.Dir == "":
		return soundView{}, &soundError{http.StatusNotFound, "uploads are off: set sounds_dir in the configuration"}
	case in.Workspace == "":
		return soundView{}, &soundError{http.StatusBadRequest, "choose a workspace"}
	case !soundNameRe.MatchString(in.Workspace):
		return soundView{}, &soundError{http.StatusBadRequest, "workspace " + in.Workspace + " cannot hold sounds (its name is not a plain lowercase word)"}
	case !a.canManage(in.Workspace):
		return soundView{}, &soundError{http.StatusForbidden, "only admins of workspace " + in.Workspace + " upload its sounds"}
	case !soundNameRe.MatchString(in.Name):
		return soundView{}, &soundError{http.StatusBadRequest, fmt.Sprintf("name %q: use lowercase letters, digits, - and _ (at most 64, starting with a letter or digit)", in.Name)}
	}
	final := s.soundFile(in.Workspace, in.Name)
	_, statErr := os.Stat(final)
	exists := statErr == nil
	if exists && !in.Replace {
		return soundView{}, &soundError{http.StatusConflict, fmt.Sprintf("workspace %s already has a sound named %s: tick replace to overwrite it", in.Workspace, in.Name)}
	}

	head := make([]byte, 512)
	n, err := io.ReadFull(in.File, head)
	head = head[:n]
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return soundView{}, uploadReadError(err)
	}
	if n == 0 {
		return soundView{}, &soundError{http.StatusBadRequest, "the file is empty"}
	}
	kind := sniffAudio(head)
	if kind == "" {
		return soundView{}, &soundError{http.StatusUnsupportedMediaType,
			fmt.Sprintf("%s is not a WAV, MP3 or OGG file (its content looks like %s)", or(in.Filename, "the file"), http.DetectContentType(head))}
	}
	if err := os.MkdirAll(filepath.Join(o.Dir, in.Workspace), 0o755); err != nil {
		return soundView{}, fmt.Errorf("sounds: %w", err)
	}
	// Temporary files sit beside the sounds, so that the last step is a
	// rename; their leading dot keeps them out of every listing.
	raw, err := os.CreateTemp(o.Dir, ".upload-*."+kind)
	if err != nil {
		return soundView{}, fmt.Errorf("sounds: %w", err)
	}
	defer os.Remove(raw.Name())
	_, err = io.Copy(raw, io.MultiReader(bytes.NewReader(head), io.LimitReader(in.File, o.MaxBytes+1-int64(n))))
	if cerr := raw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return soundView{}, uploadReadError(err)
	}
	if fi, err := os.Stat(raw.Name()); err == nil && fi.Size() > o.MaxBytes {
		return soundView{}, &soundError{http.StatusRequestEntityTooLarge, "the file is too large: the largest accepted is " + fmtSize(o.MaxBytes)}
	}
	conv := filepath.Join(o.Dir, "."+filepath.Base(raw.Name())+".wav")
	defer os.Remove(conv)
	cctx, cancel := context.WithTimeout(ctx, soundConvertTimeout)
	defer cancel()
	if err := speech.ConvertWAV(cctx, raw.Name(), conv, o.Convert); err != nil {
		if ctx.Err() != nil {
			return soundView{}, ctx.Err()
		}
		why := strings.ReplaceAll(err.Error(), raw.Name(), or(in.Filename, "the file"))
		why = strings.TrimPrefix(why, "speech: ")
		s.log.Info().Err(err).Str("file", in.Filename).Msg("web: an uploaded sound could not be converted")
		return soundView{}, &soundError{http.StatusUnprocessableEntity, fmt.Sprintf("%s could not be read as %s audio: %s", or(in.Filename, "the file"), strings.ToUpper(kind), lastLine(why))}
	}
	info, err := speech.CheckWAV(conv)
	switch {
	case err != nil:
		return soundView{}, fmt.Errorf("sounds: converted file: %w", err)
	case info.DataBytes == 0 || info.Duration <= 0:
		return soundView{}, &soundError{http.StatusUnprocessableEntity, or(in.Filename, "the file") + " holds no sound: its length is zero"}
	case info.Duration > o.MaxLength:
		return soundView{}, &soundError{http.StatusUnprocessableEntity, fmt.Sprintf("%s is %s long: the longest accepted is %s", or(in.Filename, "the file"), fmtDur(info.Duration), fmtDur(o.MaxLength))}
	}
	if s.st.SharesAudio() {
		// Stored before the file appears here: another node's copy pass
		// must never find a file the database lacks (it would remove it).
		key := SoundAudioName(in.Workspace, in.Name)
		f, err := os.Open(conv)
		if err != nil {
			return soundView{}, fmt.Errorf("sounds: %w", err)
		}
		err = s.st.DeleteAudio(ctx, key)
		if err == nil {
			err = s.st.PutAudio(ctx, key, f)
		}
		f.Close()
		if err != nil {
			return soundView{}, err
		}
	}
	if err := os.Chmod(conv, 0o644); err != nil {
		return soundView{}, fmt.Errorf("sounds: %w", err)
	}
	if err := os.Rename(conv, final); err != nil {
		return soundView{}, fmt.Errorf("sounds: %w", err)
	}
	action := "upload sound"
	if exists {
		action = "replace sound"
	}
	detail := fmt.Sprintf("%s from %s (%s)", fmtDur(info.Duration), or(in.Filename, "a file"), strings.ToUpper(kind))
	if err := s.st.AddAudit(ctx, a.user.Name, action, "sound "+in.Workspace+"/"+in.Name, detail); err != nil {
		s.log.Warn().Err(err).Msg("web: recording a sound upload in the audit")
	}
	s.log.Info().Str("sound", in.Workspace+"/"+in.Name).Str("user", a.user.Name).Dur("length", info.Duration).Msg("web: sound uploaded")
	v := s.soundView(a, in.Workspace, in.Name)
	v.Duration, v.Modified = info.Duration.Seconds(), s.now()
	if fi, err := os.Stat(final); err == nil {
		v.Size = fi.Size()
	}
	return v, nil
}

// fmtSize shows a size limit as people read it: 300 KB, 50 MB.
func fmtSize(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 || n >= 10<<20 {
		return fmt.Sprintf("%d MB", n>>20)
	}
	return fmt.Sprintf("%d KB", (n+1023)>>10)
}

func uploadReadError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &soundError{http.StatusRequestEntityTooLarge, "the file is too large"}
	}
	return &soundError{http.StatusBadRequest, "the upload did not arrive whole: " + err.Error()}
}

// lastLine is the last non-empty line of a command's message, where sox
// says what went wrong.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func (s *Server) soundUploadForm(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	in, done, err := formUpload(r)
	defer done()
	var d soundsData
	d.Form.Name, d.Form.Workspace = in.Name, in.Workspace
	var v soundView
	if err == nil {
		v, err = s.saveSound(r.Context(), a, in)
	}
	var se *soundError
	switch {
	case errors.As(err, &se):
		d.Error = se.msg
		s.renderSounds(w, r, se.code, d)
		return
	case err != nil:
		s.internal(w, r, err)
		return
	}
	d.Form.Name = ""
	d.Message = fmt.Sprintf("Saved %s/%s (%s). Use it in a flow as %s.", v.Workspace, v.Name, fmtDur(v.Length()), v.Media)
	s.renderSounds(w, r, http.StatusOK, d)
}

// soundFailed answers err if there is one: a refusal with its reason (as
// JSON under /api/), anything else as an internal error.
func (s *Server) soundFailed(w http.ResponseWriter, r *http.Request, err error) bool {
	var se *soundError
	switch {
	case err == nil:
		return false
	case errors.As(err, &se):
		s.fail(w, r, se.code, se.msg)
	default:
		s.internal(w, r, err)
	}
	return true
}

func (s *Server) apiSoundUpload(w http.ResponseWriter, r *http.Request) {
	in, done, err := formUpload(r)
	defer done()
	var v soundView
	if err == nil {
		v, err = s.saveSound(r.Context(), auth(r), in)
	}
	if !s.soundFailed(w, r, err) {
		writeJSON(w, http.StatusCreated, v)
	}
}

func (s *Server) apiSounds(w http.ResponseWriter, r *http.Request) {
	list, err := s.listSounds(r.Context(), auth(r))
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if list == nil {
		list = []soundView{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"enabled": s.opts.Sounds.Dir != "", "sounds": list,
		"max_seconds": s.opts.Sounds.MaxLength.Seconds(), "max_bytes": s.opts.Sounds.MaxBytes})
}

// soundAudio plays a sound in scope: this node's file, or the database's
// copy of one this node lacks yet. Only files inside the sounds directory
// are ever read.
func (s *Server) soundAudio(w http.ResponseWriter, r *http.Request) {
	ws, name := r.PathValue("ws"), r.PathValue("name")
	path := s.soundFile(ws, name)
	if path == "" || !auth(r).scope().Allows(ws) {
		s.fail(w, r, http.StatusNotFound, "sound not found")
		return
	}
	s.serveAudio(w, r, ws+"-"+name, func(ctx context.Context) (io.ReadSeekCloser, time.Time, error) {
		if inside(s.opts.Sounds.Dir, path) {
			if f, mod, err := openRegular(path); err == nil || !s.st.SharesAudio() {
				return f, mod, err
			}
		} else if !s.st.SharesAudio() {
			return nil, time.Time{}, fmt.Errorf("sound %s/%s: %w", ws, name, fs.ErrNotExist)
		}
		a, err := s.st.OpenAudio(ctx, SoundAudioName(ws, name))
		if err != nil {
			return nil, time.Time{}, err
		}
		return a, a.Created(), nil
	})
}

// deleteSound removes a sound for a: its file and its database copy.
func (s *Server) deleteSound(ctx context.Context, a *authInfo, ws, name string) error {
	path := s.soundFile(ws, name)
	if path == "" || !a.scope().Allows(ws) {
		return &soundError{http.StatusNotFound, "sound not found"}
	}
	if !a.canManage(ws) {
		return &soundError{http.StatusForbidden, "only admins of workspace " + ws + " delete its sounds"}
	}
	found := false
	if s.st.SharesAudio() {
		key := SoundAudioName(ws, name)
		have, err := s.st.HasAudio(ctx, key)
		if err != nil {
			return err
		}
		if have {
			found = true
			if err := s.st.DeleteAudio(ctx, key); err != nil {
				return err
			}
		}
	}
	if inside(s.opts.Sounds.Dir, path) {
		if err := os.Remove(path); err == nil {
			found = true
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sounds: %w", err)
		}
	}
	if !found {
		return &soundError{http.StatusNotFound, "sound not found"}
	}
	if err := s.st.AddAudit(ctx, a.user.Name, "delete sound", "sound "+ws+"/"+name, ""); err != nil {
		s.log.Warn().Err(err).Msg("web: recording a sound deletion in the audit")
	}
	s.log.Info().Str("sound", ws+"/"+name).Str("user", a.user.Name).Msg("web: sound deleted")
	return nil
}

func (s *Server) soundDeleteForm(w http.ResponseWriter, r *http.Request) {
	if !s.soundFailed(w, r, s.deleteSound(r.Context(), auth(r), r.PathValue("ws"), r.PathValue("name"))) {
		http.Redirect(w, r, "/sounds?msg=deleted", http.StatusSeeOther)
	}
}

func (s *Server) apiSoundDelete(w http.ResponseWriter, r *http.Request) {
	if !s.soundFailed(w, r, s.deleteSound(r.Context(), auth(r), r.PathValue("ws"), r.PathValue("name"))) {
		w.WriteHeader(http.StatusNoContent)
	}
}

var ttsKeyRe = regexp.MustCompile(`^[0-9a-f]{16}$`)

// say renders text with the flows' text to speech and returns where to
// hear it.
func (s *Server) say(ctx context.Context, a *authInfo, text string) (soundPreview, error) {
	o := s.opts.Sounds
	switch {
	case !a.isAdmin():
		return soundPreview{}, &soundError{http.StatusForbidden, "only admins preview text to speech"}
	case o.Speech == nil:
		return soundPreview{}, &soundError{http.StatusNotFound, "text to speech is not available on this server"}
	case strings.TrimSpace(text) == "":
		return soundPreview{}, &soundError{http.StatusBadRequest, "type some text to hear"}
	}
	media, err := o.Speech.Speak(ctx, text)
	switch {
	case errors.Is(err, speech.ErrTextTooLong) || errors.Is(err, speech.ErrEmptyText):
		return soundPreview{}, &soundError{http.StatusBadRequest, strings.TrimPrefix(err.Error(), "speech: ")}
	case err != nil:
		s.log.Warn().Err(err).Msg("web: text to speech preview")
		return soundPreview{}, &soundError{http.StatusServiceUnavailable, "text to speech failed: " + strings.TrimPrefix(lastLine(err.Error()), "speech: ")}
	}
	file := strings.TrimPrefix(string(media), "sound:") + ".wav"
	key, ok := strings.CutPrefix(strings.TrimSuffix(filepath.Base(file), ".wav"), "tts-")
	if !ok || !ttsKeyRe.MatchString(key) || filepath.Dir(file) != o.SpeechDir {
		return soundPreview{}, fmt.Errorf("sounds: text to speech wrote %s, outside %s", file, o.SpeechDir)
	}
	return soundPreview{Text: text, Audio: "/sounds/say/" + key + "/audio", Media: string(media)}, nil
}

func (s *Server) soundSayForm(w http.ResponseWriter, r *http.Request) {
	text := r.PostFormValue("text")
	p, err := s.say(r.Context(), auth(r), text)
	var se *soundError
	switch {
	case errors.As(err, &se):
		s.renderSounds(w, r, se.code, soundsData{Error: se.msg, Text: text})
	case err != nil:
		s.internal(w, r, err)
	default:
		s.renderSounds(w, r, http.StatusOK, soundsData{Preview: &p, Text: text})
	}
}

func (s *Server) apiSoundSay(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Text string `json:"text"`
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/json" {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			writeError(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
			return
		}
	} else {
		body.Text = r.FormValue("text")
	}
	p, err := s.say(r.Context(), auth(r), body.Text)
	if !s.soundFailed(w, r, err) {
		writeJSON(w, http.StatusOK, map[string]string{"text": p.Text, "audio": "/api" + p.Audio})
	}
}

// soundSayAudio plays a preview: only a file of the text to speech's own
// directory, named by its key.
func (s *Server) soundSayAudio(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	dir := s.opts.Sounds.SpeechDir
	if !auth(r).isAdmin() || dir == "" || !ttsKeyRe.MatchString(key) {
		s.fail(w, r, http.StatusNotFound, "preview not found")
		return
	}
	path := filepath.Join(dir, "tts-"+key+".wav")
	s.serveAudio(w, r, "tts-"+key, func(context.Context) (io.ReadSeekCloser, time.Time, error) {
		if !inside(dir, path) {
			return nil, time.Time{}, fmt.Errorf("preview %s: %w", key, fs.ErrNotExist)
		}
		return openRegular(path)
	})
}
