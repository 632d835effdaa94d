package ari

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Orphans are channels in the application that no call of this process
// owns: an earlier process was killed mid-call (or events were lost). None
// may stay in Stasis for ever, and no conversation is cut:
//   - a channel not yet answered starts its flow, as if it had just come in;
//   - a caller answered but talking to nobody (mid-prompt, mid-menu, or
//     left alone in a bridge) leaves that bridge and starts the flow over;
//   - a conversation (a bridge of two or more of our channels) is left to
//     go on and watched: when one side leaves, the others are hung up and
//     the bridge destroyed, as the call that made it would have done;
//   - an agent leg talking to nobody is hung up;
//   - an empty bridge an earlier call made is destroyed.

// adoption is a conversation an earlier process bridged.
type adoption struct {
	bridge  string
	members []string
	limit   *time.Timer // MaxCallDuration after the oldest member came in
}

// ourApp reports whether ch is in this Stasis application, and its args.
// A channel moved here from a dead primary still names the primary's
// application in its dialplan (the move happens inside the same Stasis()).
func (a *App) ourApp(ch *channelData) ([]string, bool) {
	if args, ok := stasisArgs(ch, a.opts.App); ok {
		return args, true
	}
	if a.opts.StandbyFor != "" {
		if _, arrived := a.wasMoved(ch.ID); arrived {
			return stasisArgs(ch, a.opts.StandbyFor)
		}
	}
	return nil, false
}

// appChannels are the channels Asterisk has in this application
// (GET /applications/{app}); nil when it cannot tell.
func (a *App) appChannels(ctx context.Context) map[string]bool {
	var app struct {
		ChannelIDs *[]string `json:"channel_ids"`
	}
	if err := a.rest.do(ctx, http.MethodGet, "/applications/"+esc(a.opts.App), nil, nil, &app); err != nil || app.ChannelIDs == nil {
		if err != nil && ctx.Err() == nil {
			a.log.Debug().Err(err).Msg("reconcile: the application's channels unknown")
		}
		return nil
	}
	out := make(map[string]bool, len(*app.ChannelIDs))
	for _, id := range *app.ChannelIDs {
		out[id] = true
	}
	return out
}

// ourBridgeID matches the ids Dial gives bridges: <channel>-b<n>.
func ourBridgeID(id string) bool {
	i := strings.LastIndex(id, "-b")
	if i <= 0 || i+2 >= len(id) {
		return false
	}
	_, err := strconv.ParseUint(id[i+2:], 10, 64)
	return err == nil
}

// takeOrphans deals with the orphans among chans (see above) and returns
// how many calls it started.
func (a *App) takeOrphans(ctx context.Context, chans []channelData) int {
	ours := make(map[string]*channelData)
	var orphans []*channelData
	answered := false
	members := a.appChannels(ctx)
	for i := range chans {
		ch := &chans[i]
		_, ok := a.ourApp(ch)
		if ok && members != nil && !members[ch.ID] {
			// Its dialplan says our Stasis() but another application has
			// it: a standby moved it while this process was down.
			ok = false
		}
		if !ok {
			if moved, _ := a.wasMoved(ch.ID); moved {
				// On its way here from a dead primary: one side of a
				// conversation still, not an orphan yet.
				ours[ch.ID] = ch
			}
			continue
		}
		ours[ch.ID] = ch
		a.mu.RLock()
		_, known := a.routes[ch.ID]
		_, adopted := a.adopted[ch.ID]
		ended := a.ended.has(ch.ID)
		a.mu.RUnlock()
		if !known && !adopted && !ended {
			orphans = append(orphans, ch)
			answered = answered || ch.State == "Up"
		}
	}
	var bridges []bridgeData
	if err := a.rest.do(ctx, http.MethodGet, "/bridges", nil, nil, &bridges); err != nil {
		if ctx.Err() == nil {
			a.log.Warn().Err(err).Msg("reconcile: listing bridges failed")
		}
		if answered {
			return 0 // without bridges a conversation cannot be told apart
		}
	}
	memberOf := make(map[string]*bridgeData)
	for i := range bridges {
		b := &bridges[i]
		for _, id := range b.Channels {
			memberOf[id] = b
		}
		a.mu.RLock()
		_, owned := a.routes[b.ID]
		a.mu.RUnlock()
		if len(b.Channels) == 0 && !owned && b.Creator == "Stasis" && ourBridgeID(b.ID) {
			a.destroyBridge(b.ID)
		}
	}
	picked := 0
	for _, ch := range orphans {
		args, _ := a.ourApp(ch)
		dialed := len(args) > 0 && args[0] == dialedMarker
		if ch.State != "Up" {
			if dialed {
				a.hangupOrphan(ch.ID)
				continue
			}
			picked++
			a.startOrphan(ch, args, false)
			continue
		}
		b := memberOf[ch.ID]
		talking := 0
		if b != nil {
			for _, id := range b.Channels {
				if id != ch.ID && ours[id] != nil {
					talking++
				}
			}
		}
		switch {
		case talking > 0:
			a.adopt(b, ours)
		case dialed:
			a.hangupOrphan(ch.ID)
		default:
			if b != nil {
				p := params{}
				p.add("channel", ch.ID)
				if err := a.rest.do(ctx, http.MethodPost, "/bridges/"+esc(b.ID)+"/removeChannel", &p, nil, nil); err != nil && !IsNotFound(err) {
					a.log.Warn().Err(err).Str("channel", ch.ID).Str("bridge", b.ID).Msg("reconcile: could not take the caller out of an old bridge")
				}
				if len(b.Channels) == 1 && ourBridgeID(b.ID) {
					a.destroyBridge(b.ID)
				}
			}
			picked++
			a.startOrphan(ch, args, true)
		}
	}
	return picked
}

func (a *App) startOrphan(ch *channelData, args []string, resumed bool) {
	in := parseInbound(args, ch.Dialplan.Exten, ch.Dialplan.Context, ch.Caller.Number, ch.Caller.Name, ch.Name)
	in.Resumed = resumed
	if resumed {
		a.log.Warn().Str("call", ch.ID).Msg("reconcile: answered caller that no call owns (callflow restarted mid-call): the flow starts over")
	}
	a.startCall(ch.ID, ch.State, in)
}

// adopt watches a conversation an earlier process bridged.
func (a *App) adopt(b *bridgeData, ours map[string]*channelData) {
	ad := &adoption{bridge: b.ID}
	a.mu.Lock()
	defer a.mu.Unlock()
	var oldest time.Time
	for _, id := range b.Channels {
		if ch := ours[id]; ch != nil {
			if _, dup := a.adopted[id]; dup {
				return
			}
			ad.members = append(ad.members, id)
			if t := ch.Created.Time; !t.IsZero() && (oldest.IsZero() || t.Before(oldest)) {
				oldest = t
			}
		}
	}
	for _, id := range ad.members {
		a.adopted[id] = ad
	}
	a.nAdopted.Add(int64(len(ad.members)))
	if oldest.IsZero() {
		oldest = time.Now()
	}
	// Two parties who never hang up still leave in the end. The end runs
	// as a helper (Run's end, and tests, wait for helpers): counted at
	// once when the limit is already past, else when the timer fires,
	// unless Run is ending by then.
	end := func() {
		defer a.helpers.Done()
		a.log.Warn().Str("bridge", ad.bridge).Msg("adopted conversation reached the maximum call duration: hanging up")
		a.endAdoption(ad, "")
	}
	if d := time.Until(oldest.Add(a.opts.MaxCallDuration)); d > 0 {
		ad.limit = time.AfterFunc(d, func() {
			a.mu.Lock()
			over := a.adoptionsOver
			if !over {
				a.helpers.Add(1)
			}
			a.mu.Unlock()
			if !over {
				end()
			}
		})
	} else {
		a.helpers.Add(1)
		go end()
	}
	a.log.Warn().Str("bridge", b.ID).Strs("channels", ad.members).Msg("reconcile: conversation bridged by an earlier run left to go on; it is ended when one side leaves")
}

// adoptedGone ends the adopted conversation of channel id, which left (or
// vanished).
func (a *App) adoptedGone(id string) {
	a.mu.RLock()
	ad := a.adopted[id]
	a.mu.RUnlock()
	if ad != nil {
		a.endAdoption(ad, id)
	}
}

// endAdoption hangs up the members of ad but left (none when left is "")
// and destroys its bridge, once.
func (a *App) endAdoption(ad *adoption, left string) {
	a.mu.Lock()
	if len(ad.members) == 0 || a.adopted[ad.members[0]] != ad {
		a.mu.Unlock()
		return // ended already
	}
	for _, m := range ad.members {
		delete(a.adopted, m)
	}
	a.nAdopted.Add(-int64(len(ad.members)))
	a.mu.Unlock()
	if ad.limit != nil {
		ad.limit.Stop()
	}
	a.log.Info().Str("bridge", ad.bridge).Str("left", left).Msg("adopted conversation over")
	if a.opts.ConversationOver != nil {
		a.opts.ConversationOver(ad.members, time.Now())
	}
	for _, m := range ad.members {
		if m != left {
			a.hangupOrphan(m)
		}
	}
	a.destroyBridge(ad.bridge)
}

// stopAdoptions stops watching adopted conversations: the next process
// adopts them again.
func (a *App) stopAdoptions() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.adoptionsOver = true
	for id, ad := range a.adopted {
		if ad.limit != nil {
			ad.limit.Stop()
		}
		delete(a.adopted, id)
	}
	a.nAdopted.Store(0)
}

func (a *App) destroyBridge(id string) {
	a.deleteInBackground("/bridges/"+esc(id), "stale bridge not destroyed")
}

// deleteInBackground sends DELETE path without making anyone wait (the
// client bounds the request); a 404 means it is gone already.
func (a *App) deleteInBackground(path, failed string) {
	a.helpers.Add(1)
	go func() {
		defer a.helpers.Done()
		if err := a.rest.do(context.Background(), http.MethodDelete, path, nil, nil, nil); err != nil && !IsNotFound(err) {
			a.log.Warn().Err(err).Str("path", path).Msg(failed)
		}
	}()
}

// recentlyEnded remembers the calls this process ended in the last
// minute: their channel may still be listed (hanging up) and must not be
// taken for an orphan.
type recentlyEnded struct {
	order []endedCall
	set   map[string]struct{}
}

type endedCall struct {
	id string
	at time.Time
}

const rememberEnded = time.Minute

func (r *recentlyEnded) add(id string, now time.Time) {
	if r.set == nil {
		r.set = make(map[string]struct{})
	}
	for len(r.order) > 0 && now.Sub(r.order[0].at) > rememberEnded {
		delete(r.set, r.order[0].id)
		r.order[0] = endedCall{}
		r.order = r.order[1:]
	}
	r.order = append(r.order, endedCall{id, now})
	r.set[id] = struct{}{}
}

func (r *recentlyEnded) has(id string) bool {
	_, ok := r.set[id]
	return ok
}
