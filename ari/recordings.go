package ari

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// FetchRecording streams a stored recording's audio (GET
// /recordings/stored/{name}/file): voicemails recorded over ARI live on
// the Asterisk box, and emails and the inbox need their bytes. The caller
// closes the reader.
func (a *App) FetchRecording(ctx context.Context, name string) (io.ReadCloser, error) {
	// A download may take longer than a REST command; bound it separately.
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.client.base+"/recordings/stored/"+url.PathEscape(name)+"/file", nil)
	if err != nil {
		cancel()
		return nil, err
	}
	if a.client.auth != "" {
		req.Header["Authorization"] = []string{a.client.auth}
	}
	resp, err := a.client.hc.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("ari: fetch recording %s: %w", name, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, &Error{Method: http.MethodGet, Path: "/recordings/stored/" + name + "/file", Status: resp.StatusCode}
	}
	return &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}, nil
}

// StoredRecordings lists the names of Asterisk's stored recordings (for
// reconciling voicemails at start-up).
func (a *App) StoredRecordings(ctx context.Context) ([]string, error) {
	var list []struct {
		Name string `json:"name"`
	}
	if err := a.rest.do(ctx, http.MethodGet, "/recordings/stored", nil, nil, &list); err != nil {
		return nil, err
	}
	out := make([]string, len(list))
	for i, r := range list {
		out[i] = r.Name
	}
	return out, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// deleteStored removes a stored recording, in the background.
func (a *App) deleteStored(name string) {
	a.deleteInBackground("/recordings/stored/"+esc(name), "empty recording not deleted")
}
