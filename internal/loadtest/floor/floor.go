package floor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// Main runs the client as callflow-load starts callflow: `serve --config
// FILE`, reading only [ari] url, username, password, app and [http] listen
// from that file (url as callflow takes it, ending in /ari). It serves /healthz and the few /metrics samples the load
// tool reads, and exits on SIGTERM once its calls are over.
func Main(args []string) int {
	if len(args) != 3 || args[0] != "serve" || args[1] != "--config" {
		fmt.Fprintln(os.Stderr, "usage: ari-floor serve --config FILE")
		return 2
	}
	cfg, err := readConfig(args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "ari-floor:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	c := &client{cfg: cfg, hc: &http.Client{Timeout: 10 * time.Second}, calls: map[string]chan event{}}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ari-floor:", err)
		return 1
	}
	srv := &http.Server{Handler: c.web()}
	go srv.Serve(ln)
	defer srv.Close()
	err = c.run(ctx)
	c.wg.Wait()
	if err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "ari-floor:", err)
		return 1
	}
	return 0
}

type config struct{ url, user, pass, app, listen string }

// readConfig reads the keys it needs from the config callflow-load writes.
func readConfig(path string) (config, error) {
	cfg := config{user: "callflow", app: "callflow"}
	f, err := os.Open(path)
	if err != nil {
		return cfg, err
	}
	defer f.Close()
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			section = strings.Trim(line, "[]")
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		val, err := strconv.Unquote(strings.TrimSpace(v))
		if err != nil {
			continue
		}
		switch section + "." + strings.TrimSpace(k) {
		case "ari.url":
			cfg.url = strings.TrimRight(val, "/")
		case "ari.username":
			cfg.user = val
		case "ari.password":
			cfg.pass = val
		case "ari.app":
			cfg.app = val
		case "http.listen":
			cfg.listen = val
		}
	}
	if cfg.url == "" || cfg.listen == "" {
		return cfg, errors.New("config needs [ari] url and [http] listen")
	}
	return cfg, sc.Err()
}

// event is the part of an ARI event the client reads.
type event struct {
	Type     string   `json:"type"`
	Args     []string `json:"args"`
	Digit    string   `json:"digit"`
	Channel  struct{ ID, State string }
	Playback struct {
		ID string `json:"id"`
	} `json:"playback"`
}

type client struct {
	cfg       config
	hc        *http.Client
	wg        sync.WaitGroup
	connected atomic.Bool
	active    atomic.Int64

	mu    sync.Mutex
	calls map[string]chan event // channel id (caller or leg) -> its call
}

func (c *client) web() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"ok":%v}`, c.connected.Load())
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		fmt.Fprintf(w, "callflow_calls_in_progress %d\ncallflow_store_queue_depth 0\ngo_goroutines %d\ngo_memstats_heap_inuse_bytes %d\ngo_memstats_stack_inuse_bytes %d\n",
			c.active.Load(), runtime.NumGoroutine(), m.HeapInuse, m.StackInuse)
	})
	return mux
}

func (c *client) run(ctx context.Context) error {
	u := strings.Replace(c.cfg.url, "http", "ws", 1) + "/events?app=" + url.QueryEscape(c.cfg.app) + "&subscribeAll=false"
	hdr := http.Header{}
	hdr.Set("Authorization", "Basic "+basic(c.cfg.user, c.cfg.pass))
	for ctx.Err() == nil {
		ws, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: hdr})
		if err != nil {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		ws.SetReadLimit(1 << 20)
		// The event types this path uses, as callflow asks for.
		filter := `{"allowed":[{"type":"StasisStart"},{"type":"StasisEnd"},{"type":"ChannelStateChange"},{"type":"ChannelDtmfReceived"},{"type":"PlaybackFinished"},{"type":"ChannelDestroyed"}],"disallowed":[]}`
		_ = c.rest(ctx, "PUT", "/applications/"+c.cfg.app+"/eventFilter", "", []byte(filter))
		c.connected.Store(true)
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				break
			}
			var ev event
			if json.Unmarshal(b, &ev) != nil {
				continue
			}
			c.dispatch(ctx, ev)
		}
		c.connected.Store(false)
		ws.CloseNow()
	}
	return nil
}

func (c *client) dispatch(ctx context.Context, ev event) {
	id := ev.Channel.ID
	if ev.Playback.ID != "" {
		id = ev.Playback.ID[:max(strings.LastIndex(ev.Playback.ID, "-p"), 0)] // playbacks are named <channel>-pN
	}
	c.mu.Lock()
	ch, ok := c.calls[id]
	if !ok && ev.Type == "StasisStart" && (len(ev.Args) == 0 || ev.Args[0] != "dialed") {
		ch = make(chan event, 16)
		c.calls[id] = ch
		ok = true
		c.active.Add(1)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer c.active.Add(-1)
			c.call(ctx, id, ch)
		}()
	}
	c.mu.Unlock()
	if ok {
		select {
		case ch <- ev:
		default: // a call that stopped reading
		}
	}
}

// call walks the support flow's agent path: answer, welcome, menu, the
// key's team rung from a bridge, the first to answer bridged, both ends
// hung up when one side leaves.
func (c *client) call(ctx context.Context, id string, evs chan event) {
	own := []string{id}
	defer func() {
		c.mu.Lock()
		for _, o := range own {
			delete(c.calls, o)
		}
		c.mu.Unlock()
	}()
	gone := false
	next := func() (event, bool) {
		for {
			select {
			case ev := <-evs:
				if ev.Channel.ID == id && (ev.Type == "StasisEnd" || ev.Type == "ChannelDestroyed") {
					gone = true
					return ev, false
				}
				return ev, true
			case <-ctx.Done():
				return event{}, false
			}
		}
	}
	ch := "/channels/" + id
	hangup := func() {
		if !gone {
			_ = c.rest(ctx, "DELETE", ch, "", nil)
		}
	}
	if c.rest(ctx, "POST", ch+"/answer", "", nil) != nil {
		return
	}
	play := func(n int, media string) (string, bool) {
		pb := id + "-p" + strconv.Itoa(n)
		if c.rest(ctx, "POST", ch+"/play/"+pb, "media="+url.QueryEscape(media), nil) != nil {
			return "", false
		}
		for {
			ev, ok := next()
			if !ok {
				return "", false
			}
			switch {
			case ev.Type == "PlaybackFinished" && ev.Playback.ID == pb:
				return "", true
			case ev.Type == "ChannelDtmfReceived":
				_ = c.rest(ctx, "DELETE", "/playbacks/"+pb, "", nil)
				return ev.Digit, true
			}
		}
	}
	if _, ok := play(1, "sound:custom/acme-welcome"); !ok {
		return
	}
	key, ok := play(2, "sound:custom/acme-menu")
	for ok && key == "" {
		var ev event
		if ev, ok = next(); ok && ev.Type == "ChannelDtmfReceived" {
			key = ev.Digit
		}
	}
	if !ok {
		return
	}
	targets := map[string][]string{"1": {"PJSIP/tech1", "PJSIP/tech2"}, "3": {"PJSIP/sales1", "PJSIP/sales2"}}[key]
	if targets == nil {
		hangup()
		return
	}
	legs := map[string]string{} // leg id -> state
	for i, t := range targets {
		leg := id + "-l" + strconv.Itoa(i)
		c.mu.Lock()
		c.calls[leg] = evs
		c.mu.Unlock()
		own = append(own, leg)
		q := "endpoint=" + url.QueryEscape(t) + "&app=" + c.cfg.app + "&appArgs=dialed," + id + "&channelId=" + leg + "&originator=" + id
		if c.rest(ctx, "POST", "/channels/create", q, nil) == nil {
			legs[leg] = "created"
		}
	}
	bridge := id + "-b"
	_ = c.rest(ctx, "POST", "/bridges", "type=mixing&bridgeId="+bridge, nil)
	_ = c.rest(ctx, "POST", ch+"/ring", "", nil)
	winner := ""
	for winner == "" && len(legs) > 0 {
		ev, ok := next()
		if !ok {
			break
		}
		leg := ev.Channel.ID
		if _, mine := legs[leg]; !mine {
			continue
		}
		switch ev.Type {
		case "StasisStart":
			_ = c.rest(ctx, "POST", "/channels/"+leg+"/dial", "caller="+id+"&timeout=20", nil)
		case "ChannelStateChange":
			if ev.Channel.State == "Up" {
				winner = leg
			}
		case "StasisEnd", "ChannelDestroyed":
			delete(legs, leg)
		}
	}
	for leg := range legs {
		if leg != winner {
			_ = c.rest(ctx, "DELETE", "/channels/"+leg, "", nil)
		}
	}
	if !gone {
		_ = c.rest(ctx, "DELETE", ch+"/ring", "", nil)
	}
	if winner != "" && !gone {
		_ = c.rest(ctx, "POST", "/bridges/"+bridge+"/addChannel", "channel="+id+","+winner, nil)
		for {
			ev, ok := next()
			if !ok || ev.Channel.ID == winner && (ev.Type == "StasisEnd" || ev.Type == "ChannelDestroyed") {
				break
			}
		}
	}
	_ = c.rest(ctx, "DELETE", "/bridges/"+bridge, "", nil)
	hangup()
}

// rest makes one ARI request and reads its answer.
func (c *client) rest(ctx context.Context, method, path, query string, body []byte) error {
	u := c.cfg.url + path
	if query != "" {
		u += "?" + query
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	req.SetBasicAuth(c.cfg.user, c.cfg.pass)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return nil
}

func basic(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}
