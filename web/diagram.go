package web

import (
	"fmt"
	"hash/fnv"
	"html"
	"html/template"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/callflow/callflow/flows"
)

// The flow diagram is drawn here rather than by a JavaScript library: a
// small layered ("Sugiyama") layout — break cycles, assign layers by
// longest path, route long edges through dummy nodes, order each layer by
// barycenters, place x by neighbour medians — written out as inline SVG.
// It needs no CDN and nothing in the browser.

// startID names the "call" node in highlights.
const startID = "\x00start"

// highlight marks what a call visited.
type highlight struct {
	steps             map[string][]int   // step -> its sequence numbers in the call
	edges             map[[2]string]bool // step -> step transitions (startID for the entry)
	last, lastOutcome string             // where the call left this flow
}

type nodeKind int

const (
	nStart nodeKind = iota
	nStep
	nEnd
	nDead
	nTransfer
	nMissing
	nDummy
)

type edgeStyle int

const (
	eRouted edgeStyle = iota
	eFall
	eEnd
	eDead
	eTransfer
)

type gnode struct {
	kind        nodeKind
	key         string // step id for steps
	title, sub  string
	step        *flows.Step
	w, h        float64
	rank        float64 // initial order
	layer       int
	pos         int
	x, y        float64 // centre
	unreachable bool
	seqs        []int
	hl          bool
	loopW       float64 // room a self-loop and its label take on the right
}

type gedge struct {
	from, to int
	labels   []string
	style    edgeStyle
	back     bool
	self     bool
	chain    []int // from .. to through dummies, in drawing direction
	hl       bool
	pts      [][2]float64
}

type graph struct {
	nodes []*gnode
	edges []*gedge
	out   [][]int // edge indices by source
}

func (g *graph) add(n *gnode) int {
	g.nodes = append(g.nodes, n)
	g.out = append(g.out, nil)
	return len(g.nodes) - 1
}

func (g *graph) edge(from, to int, labels []string, style edgeStyle) *gedge {
	e := &gedge{from: from, to: to, labels: labels, style: style, self: from == to}
	g.edges = append(g.edges, e)
	g.out[from] = append(g.out[from], len(g.edges)-1)
	return e
}

// Sizes, in SVG user units (pixels).
const (
	stepH     = 46.0
	pillH     = 26.0
	layerGap  = 84.0
	nodeGap   = 30.0
	dummyGap  = 16.0
	margin    = 24.0
	labelLine = 14.0
	fontStack = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
)

// textWidth estimates rendered width: the layout needs no font metrics to
// be right, only roughly right.
func textWidth(s string, size float64, bold bool) float64 {
	w := 0.0
	for _, r := range s {
		switch {
		case strings.ContainsRune("il.,:;'|!", r):
			w += 0.3
		case strings.ContainsRune("mwMW@", r):
			w += 0.85
		case r >= 'A' && r <= 'Z':
			w += 0.68
		case r > 0x7f:
			w += 0.75
		default:
			w += 0.55
		}
	}
	if bold {
		w *= 1.07
	}
	return w * size
}

// buildGraph turns the flow's routes into nodes and edges: one edge per
// (step, destination), labelled with every outcome that takes it.
func buildGraph(f *flows.Flow, hl *highlight) *graph {
	g := &graph{}
	start := g.add(&gnode{kind: nStart, key: startID, title: "call", w: 64, h: pillH, rank: -1})
	byID := map[string]int{}
	for i, st := range f.Steps {
		n := &gnode{kind: nStep, key: st.ID, title: st.ID, sub: st.Applet, step: st, h: stepH, rank: float64(i)}
		n.w = math.Max(textWidth(st.ID, 13, true), textWidth(st.Applet, 11, false)) + 34
		n.w = math.Max(n.w, 96)
		if hl != nil {
			if seqs, ok := hl.steps[st.ID]; ok {
				n.hl, n.seqs = true, seqs
			}
		}
		byID[st.ID] = g.add(n)
	}
	if len(f.Steps) > 0 {
		e := g.edge(start, byID[f.Steps[0].ID], nil, eRouted)
		e.hl = hl != nil && hl.edges[[2]string{startID, f.Steps[0].ID}]
	}
	pill := func(kind nodeKind, title string, rank float64) int {
		return g.add(&gnode{kind: kind, title: title, w: math.Max(textWidth(title, 11, false)+26, 46), h: pillH, rank: rank})
	}
	for i, st := range f.Steps {
		from := byID[st.ID]
		rank := float64(i) + 0.5
		last := hl != nil && hl.last == st.ID
		for _, e := range flows.StepEdges(f, st) {
			ls := e.Outcomes
			taken := last && (len(ls) == 0 || contains(ls, hl.lastOutcome))
			switch e.Kind {
			case flows.RouteTransfer:
				g.edge(from, pill(nTransfer, "→ flow "+e.To, rank), []string{"transfer"}, eTransfer).hl = taken
			case flows.RouteTo, flows.RouteFallThrough:
				to, ok := byID[e.To]
				if !ok {
					g.edge(from, pill(nMissing, "missing step "+e.To, rank), ls, eDead)
					continue
				}
				style := eRouted
				if e.Kind == flows.RouteFallThrough {
					style = eFall
				}
				g.edge(from, to, ls, style).hl = hl != nil && hl.edges[[2]string{st.ID, e.To}]
			case flows.RouteEnd:
				g.edge(from, pill(nEnd, "end", rank), ls, eEnd).hl = taken
			case flows.RouteOffEnd:
				g.edge(from, pill(nDead, "dead end", rank), ls, eDead).hl = taken
			}
		}
	}
	return g
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// layout assigns layers, orders them and places every node and edge.
func (g *graph) layout() (width, height float64) {
	n := len(g.nodes)
	// 1. Break cycles: a DFS from the call marks edges to ancestors as back
	// edges. Steps it never reaches are unreachable.
	state := make([]int, n)
	var post []int
	var dfs func(v int)
	dfs = func(v int) {
		state[v] = 1
		outs := append([]int(nil), g.out[v]...)
		sort.SliceStable(outs, func(i, j int) bool { return g.nodes[g.edges[outs[i]].to].rank < g.nodes[g.edges[outs[j]].to].rank })
		for _, ei := range outs {
			e := g.edges[ei]
			switch {
			case e.self:
			case state[e.to] == 1:
				e.back = true
			case state[e.to] == 0:
				dfs(e.to)
			}
		}
		state[v] = 2
		post = append(post, v)
	}
	dfs(0)
	for v := range g.nodes {
		if state[v] == 0 {
			if nd := g.nodes[v]; nd.kind == nStep {
				nd.unreachable = true
				nd.w = math.Max(nd.w, textWidth(nd.sub+" · unreachable", 11, false)+34)
			}
			dfs(v)
		}
	}
	for _, e := range g.edges {
		if e.self {
			lw := 0.0
			for _, l := range wrapLabel(e.labels) {
				lw = math.Max(lw, textWidth(l, 11, false)+8)
			}
			g.nodes[e.from].loopW = math.Max(g.nodes[e.from].loopW, 48+lw)
		}
	}
	// 2. Layers by longest path over the acyclic edges.
	for i := len(post) - 1; i >= 0; i-- {
		v := post[i]
		for _, ei := range g.out[v] {
			e := g.edges[ei]
			if e.back || e.self {
				continue
			}
			g.nodes[e.to].layer = max(g.nodes[e.to].layer, g.nodes[v].layer+1)
		}
	}
	// 3. Dummy nodes on edges spanning more than one layer.
	for _, e := range g.edges {
		if e.self {
			continue
		}
		a, b := g.nodes[e.from].layer, g.nodes[e.to].layer
		e.chain = []int{e.from}
		step := 1
		if b < a {
			step = -1
		}
		for l := a + step; l != b; l += step {
			d := g.add(&gnode{kind: nDummy, w: 8, h: 0, layer: l, rank: g.nodes[e.from].rank + 0.25})
			e.chain = append(e.chain, d)
		}
		e.chain = append(e.chain, e.to)
	}
	n = len(g.nodes)
	up := make([][]int, n)
	down := make([][]int, n)
	for _, e := range g.edges {
		for i := 0; i+1 < len(e.chain); i++ {
			a, b := e.chain[i], e.chain[i+1]
			if g.nodes[a].layer > g.nodes[b].layer {
				a, b = b, a
			}
			down[a] = append(down[a], b)
			up[b] = append(up[b], a)
		}
	}
	nl := 0
	for _, nd := range g.nodes {
		nl = max(nl, nd.layer+1)
	}
	layers := make([][]int, nl)
	for v, nd := range g.nodes {
		layers[nd.layer] = append(layers[nd.layer], v)
	}
	setPos := func() {
		for _, l := range layers {
			for i, v := range l {
				g.nodes[v].pos = i
			}
		}
	}
	for _, l := range layers {
		sort.SliceStable(l, func(i, j int) bool { return g.nodes[l[i]].rank < g.nodes[l[j]].rank })
	}
	setPos()

	// 4. Order: barycenter sweeps, keeping the order with fewest crossings.
	crossings := func() int {
		c := 0
		for li := 0; li+1 < nl; li++ {
			var pairs [][2]int
			for _, v := range layers[li] {
				for _, w := range down[v] {
					pairs = append(pairs, [2]int{g.nodes[v].pos, g.nodes[w].pos})
				}
			}
			for i := range pairs {
				for j := i + 1; j < len(pairs); j++ {
					if (pairs[i][0]-pairs[j][0])*(pairs[i][1]-pairs[j][1]) < 0 {
						c++
					}
				}
			}
		}
		return c
	}
	snapshot := func() [][]int {
		out := make([][]int, nl)
		for i, l := range layers {
			out[i] = append([]int(nil), l...)
		}
		return out
	}
	best, bestC := snapshot(), crossings()
	sweep := func(li int, nb [][]int) {
		l := layers[li]
		bc := map[int]float64{}
		for _, v := range l {
			if len(nb[v]) == 0 {
				bc[v] = float64(g.nodes[v].pos)
				continue
			}
			sum := 0.0
			for _, w := range nb[v] {
				sum += float64(g.nodes[w].pos)
			}
			bc[v] = sum / float64(len(nb[v]))
		}
		sort.SliceStable(l, func(i, j int) bool { return bc[l[i]] < bc[l[j]] })
		for i, v := range l {
			g.nodes[v].pos = i
		}
	}
	for iter := 0; iter < 12 && bestC > 0; iter++ {
		if iter%2 == 0 {
			for li := 1; li < nl; li++ {
				sweep(li, up)
			}
		} else {
			for li := nl - 2; li >= 0; li-- {
				sweep(li, down)
			}
		}
		if c := crossings(); c < bestC {
			best, bestC = snapshot(), c
		}
	}
	layers = best
	setPos()

	// 5. y by layer rows; x by neighbour medians within separation limits.
	rowH := make([]float64, nl)
	for _, nd := range g.nodes {
		rowH[nd.layer] = math.Max(rowH[nd.layer], nd.h)
	}
	y := margin
	for li := 0; li < nl; li++ {
		for _, v := range layers[li] {
			g.nodes[v].y = y + rowH[li]/2
		}
		y += rowH[li] + layerGap
	}
	height = y - layerGap + margin

	sep := func(a, b int) float64 {
		na, nb := g.nodes[a], g.nodes[b]
		gap := nodeGap
		if na.kind == nDummy || nb.kind == nDummy {
			gap = dummyGap
		}
		return na.w/2 + na.loopW + nb.w/2 + gap
	}
	for _, l := range layers {
		x := 0.0
		for i, v := range l {
			if i > 0 {
				x += sep(l[i-1], v)
			}
			g.nodes[v].x = x
		}
	}
	place := func(l []int, want []float64) {
		k := len(l)
		if k == 0 {
			return
		}
		left := make([]float64, k)
		right := make([]float64, k)
		for i := 0; i < k; i++ {
			left[i] = want[i]
			if i > 0 {
				left[i] = math.Max(want[i], left[i-1]+sep(l[i-1], l[i]))
			}
		}
		for i := k - 1; i >= 0; i-- {
			right[i] = want[i]
			if i < k-1 {
				right[i] = math.Min(want[i], right[i+1]-sep(l[i], l[i+1]))
			}
		}
		for i, v := range l {
			g.nodes[v].x = (left[i] + right[i]) / 2
		}
	}
	median := func(v int, nb [][]int) float64 {
		if len(nb[v]) == 0 {
			return g.nodes[v].x
		}
		xs := make([]float64, 0, len(nb[v]))
		for _, w := range nb[v] {
			xs = append(xs, g.nodes[w].x)
		}
		sort.Float64s(xs)
		m := len(xs) / 2
		if len(xs)%2 == 1 {
			return xs[m]
		}
		return (xs[m-1] + xs[m]) / 2
	}
	for iter := 0; iter < 8; iter++ {
		order := make([]int, 0, nl)
		nb := up
		if iter%2 == 0 {
			for li := 1; li < nl; li++ {
				order = append(order, li)
			}
		} else {
			nb = down
			for li := nl - 2; li >= 0; li-- {
				order = append(order, li)
			}
		}
		for _, li := range order {
			l := layers[li]
			want := make([]float64, len(l))
			for i, v := range l {
				want[i] = median(v, nb)
			}
			place(l, want)
		}
	}
	minX, maxX := math.Inf(1), math.Inf(-1)
	for _, nd := range g.nodes {
		minX = math.Min(minX, nd.x-nd.w/2)
		maxX = math.Max(maxX, nd.x+nd.w/2+nd.loopW)
	}
	for _, nd := range g.nodes {
		nd.x += margin - minX
	}
	width = maxX - minX + 2*margin

	// 6. Ports: edges meet a node side spread out, ordered by where they
	// come from, so parallel edges do not overlap.
	type attach struct {
		e     *gedge
		first bool    // the chain's first point (else its last)
		other float64 // x of the neighbouring chain point
	}
	top := map[int][]attach{}
	bottom := map[int][]attach{}
	for _, e := range g.edges {
		if e.self {
			continue
		}
		e.pts = make([][2]float64, len(e.chain))
		for i, v := range e.chain {
			e.pts[i] = [2]float64{g.nodes[v].x, g.nodes[v].y}
		}
		src, dst := g.nodes[e.chain[0]], g.nodes[e.chain[len(e.chain)-1]]
		goingDown := dst.layer > src.layer
		a1 := attach{e: e, first: true, other: g.nodes[e.chain[1]].x}
		a2 := attach{e: e, first: false, other: g.nodes[e.chain[len(e.chain)-2]].x}
		if goingDown {
			bottom[e.chain[0]] = append(bottom[e.chain[0]], a1)
			top[e.chain[len(e.chain)-1]] = append(top[e.chain[len(e.chain)-1]], a2)
		} else {
			top[e.chain[0]] = append(top[e.chain[0]], a1)
			bottom[e.chain[len(e.chain)-1]] = append(bottom[e.chain[len(e.chain)-1]], a2)
		}
	}
	spread := func(m map[int][]attach, dy float64) {
		for v, as := range m {
			nd := g.nodes[v]
			sort.SliceStable(as, func(i, j int) bool { return as[i].other < as[j].other })
			k := len(as)
			span := math.Min(nd.w*0.6, float64(k-1)*18)
			for i, a := range as {
				x := nd.x
				if k > 1 {
					x = nd.x - span/2 + span*float64(i)/float64(k-1)
				}
				p := [2]float64{x, nd.y + dy*nd.h/2}
				if a.first {
					a.e.pts[0] = p
				} else {
					a.e.pts[len(a.e.pts)-1] = p
				}
			}
		}
	}
	spread(top, -1)
	spread(bottom, 1)
	return width, height
}

func (g *graph) pathD(e *gedge) string {
	if e.self {
		nd := g.nodes[e.from]
		x, y := nd.x+nd.w/2, nd.y
		return fmt.Sprintf("M%.1f %.1f C%.1f %.1f %.1f %.1f %.1f %.1f", x, y-8, x+44, y-34, x+44, y+34, x+1, y+8)
	}
	var b strings.Builder
	p := e.pts
	fmt.Fprintf(&b, "M%.1f %.1f", p[0][0], p[0][1])
	for i := 1; i < len(p); i++ {
		x0, y0, x1, y1 := p[i-1][0], p[i-1][1], p[i][0], p[i][1]
		ym := (y0 + y1) / 2
		fmt.Fprintf(&b, " C%.1f %.1f %.1f %.1f %.1f %.1f", x0, ym, x1, ym, x1, y1)
	}
	return b.String()
}

// labelAt is a point of the edge's first segment, t along it.
func (g *graph) labelAt(e *gedge, t float64) (float64, float64) {
	if e.self {
		nd := g.nodes[e.from]
		return nd.x + nd.w/2 + 36, nd.y
	}
	x0, y0, x1, y1 := e.pts[0][0], e.pts[0][1], e.pts[1][0], e.pts[1][1]
	ym := (y0 + y1) / 2
	u := 1 - t
	bx := u*u*u*x0 + 3*u*u*t*x0 + 3*u*t*t*x1 + t*t*t*x1
	by := u*u*u*y0 + 3*u*u*t*ym + 3*u*t*t*ym + t*t*t*y1
	return bx, by
}

func wrapLabel(labels []string) []string {
	var lines []string
	cur := ""
	for i, l := range labels {
		piece := l
		if i < len(labels)-1 {
			piece += ","
		}
		if cur != "" && len(cur)+1+len(piece) > 18 {
			lines = append(lines, cur)
			cur = piece
		} else if cur == "" {
			cur = piece
		} else {
			cur += " " + piece
		}
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}

var appletColors = map[string]string{
	"greeting": "#3b82f6", "menu": "#8b5cf6", "forward": "#16a34a", "multi_ring": "#16a34a",
	"ring_in_order": "#16a34a", "round_robin": "#16a34a", "voicemail": "#f59e0b", "hangup": "#64748b",
	"transfer": "#0d9488", "schedule": "#0ea5e9", "set": "#0ea5e9", "tag_route": "#0ea5e9", "zip_route": "#0ea5e9",
	"email": "#eab308", "sms": "#eab308", "webhook": "#a1a1aa", "passthru": "#a855f7", "bid": "#a855f7",
}

const (
	colEdge  = "#64748b"
	colSoft  = "#94a3b8"
	colRed   = "#dc2626"
	colTeal  = "#0d9488"
	colBlue  = "#2563eb"
	colText  = "#0f172a"
	colMuted = "#64748b"
)

func esc(s string) string { return html.EscapeString(s) }

// drawFlow lays the flow out and returns it as inline SVG. Every text is
// escaped; colours are attributes so the SVG stands alone.
func drawFlow(f *flows.Flow, hl *highlight) template.HTML {
	g := buildGraph(f, hl)
	w, h := g.layout()
	hs := fnv.New32a()
	hs.Write([]byte(f.Name))
	id := "fd" + strconv.FormatUint(uint64(hs.Sum32()), 36)

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="flow-diagram" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="%s" font-family="%s">`,
		w, h, w, h, esc("Diagram of flow "+f.Name), esc(fontStack))
	b.WriteString("<defs>")
	for _, m := range [][2]string{{"n", colEdge}, {"s", colSoft}, {"r", colRed}, {"t", colTeal}, {"b", colBlue}} {
		name, col := m[0], m[1]
		fmt.Fprintf(&b, `<marker id="%s-%s" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z" fill="%s"/></marker>`, id, name, col)
	}
	b.WriteString("</defs>")

	// Edges below nodes; highlighted edges last so they stay on top.
	edges := append([]*gedge(nil), g.edges...)
	sort.SliceStable(edges, func(i, j int) bool { return !edges[i].hl && edges[j].hl })
	b.WriteString(`<g class="fd-edges" fill="none">`)
	for _, e := range edges {
		col, marker, width, dash := colEdge, "n", 1.4, ""
		switch e.style {
		case eFall:
			dash = "5 4"
		case eEnd:
			col, marker = colSoft, "s"
		case eDead:
			col, marker, dash = colRed, "r", "5 4"
		case eTransfer:
			col, marker = colTeal, "t"
		}
		if e.hl {
			col, marker, width = colBlue, "b", 2.6
		}
		cls := "fd-edge"
		if e.back {
			cls += " fd-back"
		}
		fmt.Fprintf(&b, `<path class="%s" d="%s" stroke="%s" stroke-width="%.1f"`, cls, g.pathD(e), col, width)
		if dash != "" {
			fmt.Fprintf(&b, ` stroke-dasharray="%s"`, dash)
		}
		fmt.Fprintf(&b, ` marker-end="url(#%s-%s)"/>`, id, marker)
	}
	b.WriteString("</g>")

	// Labels avoid nodes and each other where they can.
	type box struct{ x0, y0, x1, y1 float64 }
	var boxes []box
	for _, nd := range g.nodes {
		if nd.kind != nDummy {
			boxes = append(boxes, box{nd.x - nd.w/2, nd.y - nd.h/2, nd.x + nd.w/2, nd.y + nd.h/2})
		}
	}
	overlap := func(c box) float64 {
		area := 0.0
		for _, o := range boxes {
			w := math.Min(c.x1, o.x1) - math.Max(c.x0, o.x0)
			h := math.Min(c.y1, o.y1) - math.Max(c.y0, o.y0)
			if w > 0 && h > 0 {
				area += w * h
			}
		}
		return area
	}
	b.WriteString(`<g class="fd-labels" font-size="11">`)
	for _, e := range edges {
		if len(e.labels) == 0 {
			continue
		}
		lines := wrapLabel(e.labels)
		lw := 0.0
		for _, l := range lines {
			lw = math.Max(lw, textWidth(l, 11, false))
		}
		lw += 8
		lh := float64(len(lines))*labelLine + 3
		// Try points along the first segment, on and beside the edge,
		// and keep the one that covers the least of what is drawn.
		var bx box
		var cx float64
		bestScore := math.Inf(1)
		if e.self {
			nd := g.nodes[e.from]
			cx = nd.x + nd.w/2 + 44 + lw/2
			bx = box{cx - lw/2, nd.y - lh/2, cx + lw/2, nd.y + lh/2}
			bestScore = 0
		}
		for _, t := range []float64{0.5, 0.38, 0.62, 0.28, 0.72, 0.2, 0.8} {
			px, py := g.labelAt(e, t)
			for _, dx := range []float64{0, lw/2 + 3, -(lw/2 + 3)} {
				c := box{px + dx - lw/2, py - lh/2, px + dx + lw/2, py + lh/2}
				score := overlap(c) + math.Abs(dx)*0.5 + math.Abs(t-0.5)*8
				if score < bestScore {
					bestScore, bx, cx = score, c, px+dx
				}
			}
			if bestScore == 0 || e.self {
				break
			}
		}
		boxes = append(boxes, bx)
		tc := "#334155"
		if e.style == eDead {
			tc = "#b91c1c"
		}
		if e.hl {
			tc = "#1d4ed8"
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="3" fill="#ffffff" fill-opacity="0.92"/>`, bx.x0, bx.y0, lw, lh)
		for i, l := range lines {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="%s">%s</text>`, cx, bx.y0+labelLine*float64(i+1)-1, tc, esc(l))
		}
	}
	b.WriteString("</g>")

	b.WriteString(`<g class="fd-nodes">`)
	for _, nd := range g.nodes {
		x0, y0 := nd.x-nd.w/2, nd.y-nd.h/2
		switch nd.kind {
		case nDummy:
			continue
		case nStep:
			fill, stroke, sw, dash := "#ffffff", "#94a3b8", 1.2, ""
			if nd.unreachable {
				fill, dash = "#f8fafc", ` stroke-dasharray="4 3"`
			}
			if nd.hl {
				fill, stroke, sw = "#eff6ff", colBlue, 2.2
			}
			tip := nd.step.ID + " (" + nd.step.Applet + ")"
			if nd.unreachable {
				tip += " — unreachable: no route leads here"
			}
			if nd.step.Note != "" {
				tip += "\n" + nd.step.Note
			}
			fmt.Fprintf(&b, `<g class="fd-node" data-step="%s"><title>%s</title>`, esc(nd.step.ID), esc(tip))
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="8" fill="%s" stroke="%s" stroke-width="%.1f"%s/>`, x0, y0, nd.w, nd.h, fill, stroke, sw, dash)
			col := appletColors[nd.step.Applet]
			if col == "" {
				col = colSoft
			}
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="4" height="%.1f" rx="2" fill="%s"/>`, x0+6, y0+8, nd.h-16, col)
			tc := colText
			if nd.unreachable {
				tc = colMuted
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="13" font-weight="600" fill="%s">%s</text>`, nd.x+3, nd.y-2, tc, esc(nd.title))
			sub := nd.sub
			if nd.unreachable {
				sub += " · unreachable"
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="11" fill="%s">%s</text>`, nd.x+3, nd.y+14, colMuted, esc(sub))
			if len(nd.seqs) > 0 {
				parts := make([]string, 0, len(nd.seqs))
				for _, sq := range nd.seqs {
					parts = append(parts, strconv.Itoa(sq))
				}
				t := strings.Join(parts, ",")
				if len(t) > 12 {
					t = parts[0] + ",…"
				}
				bw := math.Max(18, textWidth(t, 10, true)+10)
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="18" rx="9" fill="%s"/>`, x0+nd.w-bw/2-4, y0-9, bw, colBlue)
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10" font-weight="700" fill="#ffffff">%s</text>`, x0+nd.w-4, y0+4, esc(t))
			}
			b.WriteString("</g>")
		default:
			fill, stroke, tc, dash := "#f1f5f9", colSoft, colMuted, ""
			switch nd.kind {
			case nStart:
				fill, stroke, tc = "#dcfce7", "#16a34a", "#166534"
			case nDead, nMissing:
				fill, stroke, tc, dash = "#fef2f2", colRed, "#b91c1c", ` stroke-dasharray="4 3"`
			case nTransfer:
				fill, stroke, tc = "#f0fdfa", colTeal, "#115e59"
			}
			fmt.Fprintf(&b, `<g class="fd-pill"><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="%.1f" fill="%s" stroke="%s" stroke-width="1.2"%s/>`, x0, y0, nd.w, nd.h, nd.h/2, fill, stroke, dash)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="11" font-weight="600" fill="%s">%s</text></g>`, nd.x, nd.y+4, tc, esc(nd.title))
		}
	}
	b.WriteString("</g></svg>")
	return template.HTML(b.String())
}
