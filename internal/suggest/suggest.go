package suggest

import "iter"

// Closest returns the candidate nearest to word, if it is at most maxDist
// edits away. Of equally near candidates the alphabetically first wins, so
// the hint does not depend on map order.
func Closest(word string, candidates iter.Seq[string], maxDist int) (string, bool) {
	best, bestD := "", maxDist+1
	for c := range candidates {
		if abs(len(c)-len(word)) > maxDist {
			continue // at least that many insertions or deletions
		}
		if d := Distance(word, c); d < bestD || d == bestD && c < best {
			best, bestD = c, d
		}
	}
	return best, bestD <= maxDist
}

// Distance is the Levenshtein distance between a and b: how many bytes must
// be inserted, deleted or replaced to turn one into the other.
func Distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
