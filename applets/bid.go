package applets

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"time"
)

// Bid sells the call in a real-time auction (ping/post). Every buyer's
// `ping` URL gets the call's data (numbers, country and area code, ZIP,
// tags, variables) as a JSON POST at once and may answer
//
//	{"bid": 12.5, "destination": "PJSIP/+15551112222@trunk", "id": "b-981"}
//
// Answers are collected until the deadline; late, failed or malformed
// answers, and bids of 0 or under the floor, do not count. The highest bid
// wins (ties: the buyer listed first). A winner with a `post` URL is then
// sent the call's data with "bid" and "bid_id"; it confirms with any 2xx
// answer (which may name the destination), and declines with another
// status, {"accepted": false} or silence, in which case the next best bid
// is tried. When buyers have post URLs, pings get two thirds of the
// deadline and posts the rest, so the whole auction ends by the deadline.
// The winner's destination (from its answer, else the buyer's
// `destination`) is dialled; no winner is no_bid.
//
// The variables bid_buyer, bid_price and bid_id keep the result for
// later steps and the call record.
//
//	applet = "bid"
//	buyers = [
//	  { name = "acme", ping = "https://acme.example/ping", post = "https://acme.example/post" },
//	  { name = "zenith", ping = "https://zenith.example/rtb", destination = "PJSIP/+15553334444@trunk" },
//	]
//	floor = 10.0          # lowest acceptable bid
//	deadline = "1500ms"   # at most 5s: the caller waits meanwhile
//	secret = "env:RTB_SECRET"   # signs pings and posts (X-Callflow-Signature)
//	ring_timeout = "30s"
//	on = { no_bid = "voicemail", no_answer = "voicemail", busy = "voicemail", failed = "voicemail" }
var BidDef = Definition{
	Name:     "bid",
	Group:    "HTTP & bidding",
	Summary:  "Real-time bidding (ping/post): dial the highest bidder.",
	Outcomes: append(append([]string(nil), dialOutcomes...), "no_bid"),
	Params:   BidParams{},
	New:      newBid,
}

// BidParams are bid's parameters.
type BidParams struct {
	Buyers   []BidBuyer `toml:"buyers" doc:"buyers asked for a bid"`
	Floor    float64    `toml:"floor" doc:"lowest bid taken"`
	Deadline Duration   `toml:"deadline" doc:"how long buyers have to bid"`
	Secret   string     `toml:"secret" doc:"HMAC secret signing the requests"`
	DialParams
}

// BidBuyer is one buyer of calls.
type BidBuyer struct {
	Name        string `toml:"name"`
	Ping        string `toml:"ping"`
	Post        string `toml:"post"`
	Destination string `toml:"destination"` // when the bid names none
}

type bid struct {
	p        BidParams
	anyPost  bool
	outcomes []string
}

func newBid(p Params) (Applet, error) {
	b := &bid{outcomes: append(append([]string(nil), dialOutcomes...), "no_bid")}
	var errs problems
	errs.add(p.Decode(&b.p))
	if len(b.p.Buyers) == 0 {
		errs.add(p.Errorf("buyers", "bid needs `buyers`"))
	}
	if len(b.p.Buyers) > 50 {
		errs.add(p.Errorf("buyers", "at most 50 buyers"))
	}
	names := map[string]bool{}
	for i, by := range b.p.Buyers {
		key := fmt.Sprintf("buyers[%d]", i)
		switch {
		case by.Name == "":
			errs.add(p.Errorf(key, "a buyer needs a `name`"))
		case !ValidName(by.Name):
			errs.add(p.Errorf(key+".name", "buyer name %q: use letters, digits, '_', '.' and '-'", by.Name))
		case names[by.Name]:
			errs.add(p.Errorf(key+".name", "buyer %q is listed twice", by.Name))
		}
		names[by.Name] = true
		if by.Ping == "" {
			errs.add(p.Errorf(key, "buyer %q needs a `ping` URL", by.Name))
		} else if err := checkURL(by.Ping); err != nil {
			errs.add(p.Errorf(key+".ping", "%v", err))
		}
		if by.Post != "" {
			b.anyPost = true
			if err := checkURL(by.Post); err != nil {
				errs.add(p.Errorf(key+".post", "%v", err))
			}
		}
		if by.Destination != "" {
			if err := validTarget(by.Destination); err != nil {
				errs.add(p.Errorf(key+".destination", "%v", err))
			}
		}
	}
	switch {
	case math.IsNaN(b.p.Floor) || math.IsInf(b.p.Floor, 0):
		// TOML has nan and inf; a NaN floor would let every bid through.
		errs.add(p.Errorf("floor", "floor must be a number, not %v", b.p.Floor))
	case b.p.Floor < 0:
		errs.add(p.Errorf("floor", "floor must not be negative"))
	}
	if b.p.Deadline != 0 && (b.p.Deadline.D() < 100*time.Millisecond || b.p.Deadline.D() > 5*time.Second) {
		errs.add(p.Errorf("deadline", "deadline must be between 100ms and 5s: the caller waits meanwhile"))
	}
	if !validRingTimeout(b.p.RingTimeout) {
		errs.add(p.Errorf("ring_timeout", "ring_timeout must be between 1s and 10m"))
	}
	checkSecret(p, "secret", b.p.Secret)
	return b, errs.err()
}

func (b *bid) Facts() Facts {
	return Facts{Outcomes: b.outcomes, Terminal: []string{"answered"}}
}

// bidAnswer is one buyer's answer to a ping.
type bidAnswer struct {
	buyer       int
	price       float64
	id          string
	destination string
	problem     string // why the answer does not count
}

func (b *bid) Run(ctx context.Context, env *Env) (Result, error) {
	secret, err := secretValue(b.p.Secret)
	if err != nil {
		env.Note("error", "secret: "+err.Error())
		return Result{Outcome: "no_bid"}, nil
	}
	deadline := orDefault(b.p.Deadline, 1500*time.Millisecond)
	auction, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	pingTime := deadline
	if b.anyPost {
		pingTime = deadline * 2 / 3
	}
	data := newCallData(env)
	payload, err := json.Marshal(data)
	if err != nil {
		return Result{}, fmt.Errorf("bid: %w", err)
	}
	client := httpClient(env)

	pings, stop := context.WithTimeout(auction, pingTime)
	answers := make(chan bidAnswer, len(b.p.Buyers)) // late senders never block
	for i, by := range b.p.Buyers {
		go func() { answers <- b.ping(pings, env, client, i, by, payload, secret) }()
	}
	got := make([]*bidAnswer, len(b.p.Buyers))
	for pending := len(got); pending > 0; {
		select {
		case a := <-answers:
			got[a.buyer] = &a
			pending--
		case <-pings.Done():
			pending = 0
		}
	}
	stop()
	if ctx.Err() != nil {
		return Result{}, fmt.Errorf("bid: %w", ctx.Err())
	}

	var bids []string
	var ranked []bidAnswer
	for i, by := range b.p.Buyers {
		what, counts := b.verdict(got[i])
		if counts {
			ranked = append(ranked, *got[i])
		}
		bids = append(bids, by.Name+":"+what)
	}
	env.Note("bids", bids)
	sort.SliceStable(ranked, func(i, j int) bool { return ranked[i].price > ranked[j].price })

	var declined []string
	for _, a := range ranked {
		by := b.p.Buyers[a.buyer]
		if by.Post != "" {
			dest, why := b.post(auction, env, client, by, a, data, secret)
			if why != "" {
				declined = append(declined, by.Name+":"+why)
				continue
			}
			if dest != "" {
				a.destination = dest
			}
		}
		if len(declined) > 0 {
			env.Note("declined", declined)
		}
		cancel() // the auction is over; the dial has the call's time
		env.Note("winner", by.Name)
		env.Note("price", price(a.price))
		env.State.Vars["bid_buyer"] = by.Name
		env.State.Vars["bid_price"] = price(a.price)
		if a.id != "" {
			env.State.Vars["bid_id"] = a.id
		}
		return dial(ctx, env, b.p.DialParams, []string{a.destination})
	}
	if len(declined) > 0 {
		env.Note("declined", declined)
	}
	if ctx.Err() != nil {
		return Result{}, fmt.Errorf("bid: %w", ctx.Err())
	}
	return Result{Outcome: "no_bid"}, nil
}

// verdict says what became of a buyer's answer (nil: none in time) for
// the trace, and whether it takes part in the auction.
func (b *bid) verdict(a *bidAnswer) (what string, counts bool) {
	switch {
	case a == nil:
		return "late", false
	case a.problem != "":
		return a.problem, false
	case a.price <= 0:
		return "no-bid", false
	case a.price < b.p.Floor:
		return price(a.price) + "<floor", false
	}
	return price(a.price), true
}

func price(p float64) string { return strconv.FormatFloat(p, 'f', 2, 64) }

// ping asks one buyer for a bid.
func (b *bid) ping(ctx context.Context, env *Env, client *http.Client, i int, by BidBuyer, payload []byte, secret string) bidAnswer {
	a := bidAnswer{buyer: i}
	req := httpRequest{method: http.MethodPost, url: by.Ping, body: payload, payload: payload, secret: secret}
	status, body, err := req.do(ctx, client)
	switch {
	case err != nil && ctx.Err() != nil:
		a.problem = "late"
		return a
	case errors.Is(err, errTooLarge):
		// The buyer answered, too much: "unreachable" would mislead.
		a.problem = "too-large"
		return a
	case err != nil:
		env.Log.Debug().Err(err).Str("buyer", by.Name).Msg("bid ping failed")
		a.problem = "unreachable"
		return a
	case status < 200 || status > 299:
		a.problem = "http-" + strconv.Itoa(status)
		return a
	}
	a = parseBidAnswer(body, by.Destination)
	a.buyer = i
	return a
}

// parseBidAnswer reads the body of a buyer's 2xx answer to a ping. No
// content, or no "bid", is no bid; fallback is the buyer's destination,
// for an answer that names none. It looks at nothing else, so it can be
// fuzzed.
func parseBidAnswer(body []byte, fallback string) bidAnswer {
	var a bidAnswer
	if len(bytes.TrimSpace(body)) == 0 {
		return a
	}
	var r struct {
		Bid         *float64 `json:"bid"`
		Destination string   `json:"destination"`
		ID          string   `json:"id"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		a.problem = "bad-json"
		return a
	}
	if r.Bid == nil {
		return a
	}
	a.price, a.id = *r.Bid, r.ID
	a.destination = r.Destination
	if a.destination == "" {
		a.destination = fallback
	}
	switch {
	case a.destination == "":
		a.problem = "no-destination"
	case validTarget(a.destination) != nil:
		a.problem = "bad-destination"
	}
	return a
}

// post offers the call to a winning buyer. It returns the destination the
// buyer named, if any, or why the buyer did not take the call.
func (b *bid) post(ctx context.Context, env *Env, client *http.Client, by BidBuyer, a bidAnswer, data callData, secret string) (string, string) {
	body, err := json.Marshal(struct {
		callData
		Bid   float64 `json:"bid"`
		BidID string  `json:"bid_id,omitempty"`
	}{data, a.price, a.id})
	if err != nil {
		return "", "post-failed"
	}
	req := httpRequest{method: http.MethodPost, url: by.Post, body: body, payload: body, secret: secret}
	status, resp, err := req.do(ctx, client)
	switch {
	case err != nil && errors.Is(err, context.DeadlineExceeded):
		return "", "post-late"
	case errors.Is(err, errTooLarge):
		return "", "post-too-large"
	case err != nil:
		env.Log.Debug().Err(err).Str("buyer", by.Name).Msg("bid post failed")
		return "", "post-unreachable"
	case status < 200 || status > 299:
		return "", "post-http-" + strconv.Itoa(status)
	}
	return parsePostAnswer(resp)
}

// parsePostAnswer reads the body of a buyer's 2xx answer to a post: the
// destination it names (valid, or ""), or why the buyer declined. It
// looks at nothing else, so it can be fuzzed.
func parsePostAnswer(body []byte) (destination, declined string) {
	var r struct {
		Accepted    *bool  `json:"accepted"`
		Destination string `json:"destination"`
	}
	// A 2xx answer that is not JSON still confirms the sale.
	if json.Unmarshal(body, &r) != nil {
		return "", ""
	}
	if r.Accepted != nil && !*r.Accepted {
		return "", "post-declined"
	}
	if r.Destination != "" && validTarget(r.Destination) == nil {
		return r.Destination, ""
	}
	return "", ""
}
