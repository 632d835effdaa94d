package web

import "strings"

// diffLine is one line of a line-by-line comparison: kept (" "), removed
// ("-") or added ("+").
type diffLine struct {
	Op   string
	Text string
	// A, B are the line's numbers in the old and the new text (0: none).
	A, B int
}

// maxDiffCells bounds the comparison's table (old lines × new lines): flows
// are short, a pasted novel is not worth a second of CPU.
const maxDiffCells = 4_000_000

// lineDiff compares old and new line by line (longest common
// subsequence) and lists every line, changes in place. Past maxDiffCells it
// shows the old text removed and the new added.
func lineDiff(oldText, newText string) []diffLine {
	a, b := strings.Split(oldText, "\n"), strings.Split(newText, "\n")
	if len(a)*len(b) > maxDiffCells {
		var out []diffLine
		for i, l := range a {
			out = append(out, diffLine{Op: "-", Text: l, A: i + 1})
		}
		for j, l := range b {
			out = append(out, diffLine{Op: "+", Text: l, B: j + 1})
		}
		return out
	}
	// lcs[i][j]: the common lines of a[i:] and b[j:].
	lcs := make([][]int32, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int32, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []diffLine
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			out = append(out, diffLine{Op: " ", Text: a[i], A: i + 1, B: j + 1})
			i++
			j++
		case i < len(a) && (j == len(b) || lcs[i+1][j] >= lcs[i][j+1]):
			out = append(out, diffLine{Op: "-", Text: a[i], A: i + 1})
			i++
		default:
			out = append(out, diffLine{Op: "+", Text: b[j], B: j + 1})
			j++
		}
	}
	return out
}
