package agi

import (
	"context"
	"net"
	"testing"
	"time"

	cyagi "github.com/CyCoreSystems/agi"
	"github.com/rs/zerolog"

	"github.com/callflow/callflow/agi/agitest"
	"github.com/callflow/callflow/applets"
)

// The pinned github.com/CyCoreSystems/agi v0.6.4 and this package answer
// the same scripted Asterisk: the library reports "endpos=..." where the
// caller pressed 1, which is why this package reads AGI itself (doc.go).
func TestPinnedLibraryDefectThatOwnReaderFixes(t *testing.T) {
	script := agitest.Script{Keys: []string{"1"}, Env: map[string]string{"agi_dnid": "6000"}}

	// The library, as a FastAGI server.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		a := cyagi.NewConn(conn)
		digit, err := a.StreamFile("hello-world", "0123456789", 0)
		if err != nil {
			got <- "error: " + err.Error()
		} else {
			got <- digit
		}
		a.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ses, err := agitest.Dial(ctx, ln.Addr().String(), script)
	if err != nil {
		t.Fatal(err)
	}
	libDigit := <-got
	ses.Close()
	ln.Close()
	if libDigit == "1" {
		t.Fatalf("the pinned library now reads the digit correctly: its reader could be used again")
	}

	// This package, same peer, same command.
	ours := make(chan string, 1)
	srv := NewServer(Options{Logger: zerolog.Nop(), Handler: HandlerFunc(func(ctx context.Context, c *Call, req Request) {
		d, err := c.Play(ctx, applets.PlaySpec{Media: []applets.Media{"sound:hello-world"}, BargeIn: applets.AnyKey})
		if err != nil {
			d = "error: " + err.Error()
		}
		ours <- d
	})})
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln2) }()
	ses2, err := agitest.Dial(ctx, ln2.Addr().String(), script)
	if err != nil {
		t.Fatal(err)
	}
	if d := <-ours; d != "1" {
		t.Errorf("our reader returned %q, want the key 1 (library said %q)", d, libDigit)
	}
	ses2.Close()
	scancel()
	srv.Shutdown(ctx)
	<-served
}
