package flows

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/callflow/callflow/internal/tomlpos"
)

// StepBlock is one [[steps]] table of a flow's source as an editor sees
// it: where it is written and the parameters as the file has them.
type StepBlock struct {
	Index  int            `json:"index"`
	ID     string         `json:"id"`
	Applet string         `json:"applet"`
	Line   int            `json:"line"`     // its [[steps]] header
	End    int            `json:"end_line"` // its last line of content
	Params map[string]any `json:"params"`   // every key, id and applet included
	// Block: the step is a [[steps]] table of its own lines, so an editor
	// may replace those lines with its own text.
	Block bool `json:"block"`
}

// headerLine matches a table header, capturing its dotted name.
var headerLine = regexp.MustCompile(`^\s*\[\[?\s*([A-Za-z0-9_."\- ]+?)\s*\]\]?\s*(#.*)?$`)

// Outline finds the steps of src (a flow's TOML) and their lines, for
// editors that rewrite one step and keep the rest of the file as written.
// It fails only when src does not parse.
func Outline(src []byte) ([]StepBlock, error) {
	doc, err := tomlpos.Parse(src)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(src), "\n")
	steps, _ := doc.Root["steps"].([]any)
	if m, ok := doc.Root["steps"].([]map[string]any); ok {
		for _, s := range m {
			steps = append(steps, s)
		}
	}
	out := []StepBlock{}
	for i, raw := range steps {
		table, _ := raw.(map[string]any)
		b := StepBlock{Index: i, Params: table}
		b.ID, _ = table["id"].(string)
		b.Applet, _ = table["applet"].(string)
		pos, _ := doc.Index.Lookup("steps[" + strconv.Itoa(i) + "]")
		b.Line, b.End = pos.Line, pos.Line
		if pos.Line > 0 && pos.Line <= len(lines) && strings.HasPrefix(strings.TrimSpace(lines[pos.Line-1]), "[[") {
			b.Block = true
			b.End = blockEnd(lines, pos.Line)
		}
		out = append(out, b)
	}
	return out, nil
}

// blockEnd is the last line of the step whose header is on line start:
// the line before the next table that is not one of the step's own, less
// the blank lines and comments that lead into that table.
func blockEnd(lines []string, start int) int {
	end := len(lines)
	for n := start + 1; n <= len(lines); n++ {
		m := headerLine.FindStringSubmatch(lines[n-1])
		if m == nil {
			continue
		}
		name := strings.ReplaceAll(m[1], " ", "")
		if !strings.HasPrefix(name, "steps.") {
			end = n - 1
			break
		}
	}
	for end > start {
		t := strings.TrimSpace(lines[end-1])
		if t != "" && !strings.HasPrefix(t, "#") {
			break
		}
		end--
	}
	return end
}

// StepAtLine names the step whose lines hold line ("" for none).
func StepAtLine(blocks []StepBlock, line int) string {
	for _, b := range blocks {
		if line >= b.Line && line <= b.End {
			return b.ID
		}
	}
	return ""
}
