package mailer

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"path/filepath"
	"strings"
	"time"
)

// writeMessage writes j as a MIME message: headers, a text/plain part (the
// body and any notes), then each attachment in base64.
func (m *Mailer) writeMessage(w io.Writer, j *job, parts []part, notes []string) error {
	bw := bufio.NewWriter(w)
	mw := multipart.NewWriter(bw)
	h := func(name, value string) { bw.WriteString(foldHeader(name, value)) }
	h("From", m.from.String())
	h("To", strings.Join(j.Email.To, ", "))
	h("Subject", mime.QEncoding.Encode("utf-8", oneLine(j.Email.Subject)))
	h("Date", j.Created.Format(time.RFC1123Z))
	h("Message-ID", "<"+j.ID+"@"+m.opts.Hostname+">")
	// Notifications: vacation responders should not answer them (RFC 3834).
	h("Auto-Submitted", "auto-generated")
	h("MIME-Version", "1.0")
	h("Content-Type", mime.FormatMediaType("multipart/mixed", map[string]string{"boundary": mw.Boundary()}))
	bw.WriteString("\r\n")

	text, err := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {"text/plain; charset=utf-8"},
		"Content-Transfer-Encoding": {"quoted-printable"},
	})
	if err != nil {
		return err
	}
	qp := quotedprintable.NewWriter(text)
	body := j.Email.Body
	for _, n := range notes {
		body = strings.TrimRight(body, "\r\n") + "\n\n" + n + "\n"
	}
	if _, err := io.WriteString(qp, body); err != nil {
		return err
	}
	if err := qp.Close(); err != nil {
		return err
	}

	for _, p := range parts {
		aw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {mime.FormatMediaType(contentType(p.name), map[string]string{"name": p.name})},
			"Content-Disposition":       {mime.FormatMediaType("attachment", map[string]string{"filename": p.name})},
			"Content-Transfer-Encoding": {"base64"},
		})
		if err != nil {
			return err
		}
		lw := &lineWriter{w: aw}
		enc := base64.NewEncoder(base64.StdEncoding, lw)
		if _, err := io.Copy(enc, p.r); err != nil {
			return fmt.Errorf("attachment %s: %w", p.name, err)
		}
		if err := enc.Close(); err != nil {
			return err
		}
		if err := lw.end(); err != nil {
			return err
		}
	}
	if err := mw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// contentType is audio/wav for recordings (Asterisk stores .wav), else
// what the extension says.
func contentType(name string) string {
	ext := strings.ToLower(filepath.Ext(name))
	if ext == "" || ext == ".wav" {
		return "audio/wav"
	}
	if t := mime.TypeByExtension(ext); t != "" {
		if mt, _, err := mime.ParseMediaType(t); err == nil {
			return mt
		}
	}
	return "application/octet-stream"
}

// oneLine keeps header values on one line (no header injection).
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// foldHeader writes "Name: value\r\n", folded at spaces so lines stay
// near 78 characters (RFC 5322 2.2.3).
func foldHeader(name, value string) string {
	var b strings.Builder
	b.WriteString(name)
	b.WriteString(":")
	n := b.Len()
	for _, word := range strings.Split(value, " ") {
		// Breaking right after the colon too keeps a 75-character encoded
		// word (RFC 2047) within the line.
		if n > 0 && n+1+len(word) > 76 {
			b.WriteString("\r\n")
			n = 0
		}
		b.WriteString(" ")
		b.WriteString(word)
		n += 1 + len(word)
	}
	b.WriteString("\r\n")
	return b.String()
}

// lineWriter breaks base64 into 76-character lines (RFC 2045 6.8).
type lineWriter struct {
	w   io.Writer
	col int
}

const lineLen = 76

func (l *lineWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(lineLen-l.col, len(p))
		if _, err := l.w.Write(p[:n]); err != nil {
			return written, err
		}
		written += n
		p = p[n:]
		l.col += n
		if l.col == lineLen {
			if _, err := io.WriteString(l.w, "\r\n"); err != nil {
				return written, err
			}
			l.col = 0
		}
	}
	return written, nil
}

// end finishes the last line.
func (l *lineWriter) end() error {
	if l.col == 0 {
		return nil
	}
	l.col = 0
	_, err := io.WriteString(l.w, "\r\n")
	return err
}

// addrSpec is the bare address of a recipient ("Name <a@b>" -> "a@b").
func addrSpec(s string) string {
	if a, err := mail.ParseAddress(s); err == nil {
		return a.Address
	}
	return s
}
