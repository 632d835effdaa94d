package ari

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// A hot standby on the same Asterisk. Asterisk gives one Stasis
// application to one websocket, so the standby has an application of its
// own; the dialplan tries the primary's first and the standby's when
// Stasis() fails (no websocket open for the primary's).
//
// Calls the primary had already taken stay in its application when it
// dies: Asterisk keeps an application that still has channels, so
// GET /applications/{primary} answers 200 with no connection behind it.
// Whether a process still serves it is told by a heartbeat instead: every
// node, while its websocket is open, writes the time into the global
// variable CALLFLOW_HEARTBEAT_<APP>. When the primary's stands still for
// TakeoverAfter, the standby moves the channels left in the primary's
// application into its own (POST /channels/{id}/move) and takes them as
// the orphans of a restart (orphans.go): a caller not answered yet starts
// the flow, an answered one starts it over (Inbound.Resumed), a
// conversation goes on.

const (
	heartbeatEvery = time.Second
	standbyPoll    = time.Second
)

// heartbeatVar is the global variable that says app is served.
func heartbeatVar(app string) string {
	b := []byte("CALLFLOW_HEARTBEAT_")
	for _, r := range strings.ToUpper(app) {
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b = append(b, byte(r))
		} else {
			b = append(b, '_')
		}
	}
	return string(b)
}

// standbyState is what the standby knows of its primary.
type standbyState struct {
	// arrived is signalled when a moved channel's StasisStart reached
	// this application: the move is done (Asterisk runs it after the
	// command the channel is busy with, a prompt the primary started).
	arrived         chan struct{}
	primaryAlive    atomic.Bool
	adoptedChannels atomic.Int64 // channels taken from the primary
	takeovers       atomic.Int64 // times the primary was found gone with calls left
	// deathHandled: PrimaryDead was called for this death (watchPrimary's
	// own).
	deathHandled bool
}

// heartbeatValue is the heartbeat variable's value: the time in
// milliseconds, then the node's name.
func heartbeatValue(t time.Time, node string) string {
	v := strconv.FormatInt(t.UnixMilli(), 10)
	if node != "" {
		v += " " + node
	}
	return v
}

// heartbeatNode is the node name a heartbeat value carries ("" for none).
func heartbeatNode(v string) string {
	_, node, _ := strings.Cut(v, " ")
	return node
}

// heartbeat says this node serves its application while the websocket
// (pump's ctx) is open.
func (a *App) heartbeat(ctx context.Context) {
	defer a.helpers.Done()
	t := time.NewTicker(a.opts.HeartbeatInterval)
	defer t.Stop()
	for {
		p := params{}
		p.add("variable", heartbeatVar(a.opts.App)).add("value", heartbeatValue(time.Now(), a.opts.Node))
		if err := a.rest.do(ctx, http.MethodPost, "/asterisk/variable", &p, nil, nil); err != nil && ctx.Err() == nil {
			a.log.Debug().Err(err).Msg("heartbeat not written")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// watchPrimary polls the primary's heartbeat and takes its calls once it
// stood still for TakeoverAfter, until ctx ends.
func (a *App) watchPrimary(ctx context.Context) {
	defer a.helpers.Done()
	t := time.NewTicker(a.opts.StandbyPoll)
	defer t.Stop()
	var last string
	changed := time.Now() // a primary never seen gets TakeoverAfter to show up
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.standby.arrived:
			a.takeArrived(ctx)
			continue
		case <-t.C:
		}
		var v struct {
			Value string `json:"value"`
		}
		p := params{}
		p.add("variable", heartbeatVar(a.opts.StandbyFor))
		if err := a.rest.do(ctx, http.MethodGet, "/asterisk/variable", &p, nil, &v); err != nil {
			continue // Asterisk unreachable: nothing to take either
		}
		if v.Value != last {
			last, changed = v.Value, time.Now()
		}
		alive := time.Since(changed) < a.opts.TakeoverAfter
		if was := a.standby.primaryAlive.Swap(alive); was != alive {
			if alive {
				a.log.Info().Str("primary", a.opts.StandbyFor).Msg("primary is serving")
			} else {
				a.log.Warn().Str("primary", a.opts.StandbyFor).Dur("silent", time.Since(changed)).Msg("primary's heartbeat stopped: taking the calls it left")
			}
		}
		if !alive && a.connected.Load() && !a.draining.Load() {
			a.takeFromPrimary(ctx)
			if !a.standby.deathHandled && a.opts.PrimaryDead != nil {
				a.standby.deathHandled = true
				a.opts.PrimaryDead(ctx, heartbeatNode(last))
			}
		}
		if alive {
			a.standby.deathHandled = false // a primary back may die again
		}
	}
}

// takeFromPrimary moves the channels left in the primary's application
// into this one; takeArrived starts or adopts each once it is here. It
// returns how many it moved.
func (a *App) takeFromPrimary(ctx context.Context) int {
	var app struct {
		ChannelIDs []string `json:"channel_ids"`
	}
	if err := a.rest.do(ctx, http.MethodGet, "/applications/"+esc(a.opts.StandbyFor), nil, nil, &app); err != nil {
		if !IsNotFound(err) && ctx.Err() == nil {
			a.log.Warn().Err(err).Msg("standby: reading the primary's application failed")
		}
		return 0 // 404: no such application, so no channel in it
	}
	if len(app.ChannelIDs) == 0 {
		return 0
	}
	began := time.Now()
	var chans []channelData
	if err := a.rest.do(ctx, http.MethodGet, "/channels", nil, nil, &chans); err != nil {
		if ctx.Err() == nil {
			a.log.Warn().Err(err).Msg("standby: listing channels failed")
		}
		return 0
	}
	a.forgetMoved(channelIDs(chans))
	inPrimary := make(map[string]bool, len(app.ChannelIDs))
	for _, id := range app.ChannelIDs {
		inPrimary[id] = true
	}
	moved := 0
	for i := range chans {
		ch := &chans[i]
		// In the primary's application by both its dialplan and
		// Asterisk's list: one this node moved already (its dialplan
		// still names the primary) is in the list no more.
		args, ok := stasisArgs(ch, a.opts.StandbyFor)
		if moved, _ := a.wasMoved(ch.ID); !ok || moved || !inPrimary[ch.ID] {
			continue
		}
		a.mu.Lock()
		a.moved[ch.ID] = false // before the move: its StasisStart may come first
		a.mu.Unlock()
		p := params{}
		p.add("app", a.opts.App)
		if len(args) > 0 {
			p.add("appArgs", strings.Join(args, ","))
		}
		if err := a.rest.do(ctx, http.MethodPost, "/channels/"+esc(ch.ID)+"/move", &p, nil, nil); err != nil {
			a.mu.Lock()
			delete(a.moved, ch.ID)
			a.mu.Unlock()
			if !IsNotFound(err) && statusOf(err) != http.StatusConflict && ctx.Err() == nil {
				a.log.Warn().Err(err).Str("channel", ch.ID).Msg("standby: could not move a channel from the primary")
			}
			continue // gone, or it left Stasis meanwhile
		}
		moved++
	}
	if moved == 0 {
		return 0
	}
	a.standby.takeovers.Add(1)
	a.standby.adoptedChannels.Add(int64(moved))
	a.log.Warn().Str("primary", a.opts.StandbyFor).Int("channels", moved).
		Dur("took", time.Since(began)).Msg("standby: moving the calls the primary left here")
	return moved
}

// movedIn notes that a moved channel's StasisStart arrived.
func (a *App) movedIn(id string) {
	a.mu.Lock()
	a.moved[id] = true
	a.mu.Unlock()
	select {
	case a.standby.arrived <- struct{}{}:
	default: // a pass is due already; it sees this channel too
	}
}

// takeArrived starts or adopts the moved channels that arrived, as the
// orphans of a restart.
func (a *App) takeArrived(ctx context.Context) {
	var chans []channelData
	if err := a.rest.do(ctx, http.MethodGet, "/channels", nil, nil, &chans); err != nil {
		if ctx.Err() == nil {
			a.log.Warn().Err(err).Msg("standby: listing channels failed")
		}
		return
	}
	a.forgetMoved(channelIDs(chans))
	if n := a.takeOrphans(ctx, chans); n > 0 {
		a.log.Warn().Str("primary", a.opts.StandbyFor).Int("flows_started", n).Msg("standby: calls taken from the primary")
	}
}

// wasMoved reports whether id was moved here from the primary, and
// whether its move is done.
func (a *App) wasMoved(id string) (moved, arrived bool) {
	a.mu.RLock()
	arrived, moved = a.moved[id]
	a.mu.RUnlock()
	return moved, arrived
}

// forgetMoved drops the moved channels Asterisk no longer has.
func (a *App) forgetMoved(present map[string]struct{}) {
	a.mu.Lock()
	for id := range a.moved {
		if _, ok := present[id]; !ok {
			delete(a.moved, id)
		}
	}
	a.mu.Unlock()
}

// channelIDs is the set of the channels' ids.
func channelIDs(chans []channelData) map[string]struct{} {
	out := make(map[string]struct{}, len(chans))
	for i := range chans {
		out[chans[i].ID] = struct{}{}
	}
	return out
}

// stasisArgs reports whether ch is in Stasis application app (as Asterisk
// 20 lists it: dialplan app_name "Stasis", app_data "app,arg1,…") and the
// arguments after the name.
func stasisArgs(ch *channelData, app string) ([]string, bool) {
	if ch.Dialplan.AppName != "Stasis" {
		return nil, false
	}
	name, rest, _ := strings.Cut(ch.Dialplan.AppData, ",")
	if name != app {
		return nil, false
	}
	if rest == "" {
		return nil, true
	}
	return strings.Split(rest, ","), true
}
