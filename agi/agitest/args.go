package agitest

// ParseArgs splits an AGI command line as res_agi's parse_args does:
// arguments are separated by spaces or tabs, "..." groups, and a backslash
// takes the next character literally (inside quotes or not).
func ParseArgs(line string) []string {
	var (
		args    []string
		cur     []byte
		inArg   bool
		quoted  bool
		escaped bool
		white   = true
	)
	end := func() {
		if inArg {
			args = append(args, string(cur))
			cur = cur[:0]
			inArg = false
		}
	}
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case ch == '"' && !escaped:
			quoted = !quoted
			if quoted && white {
				end()
				inArg, white = true, false
			}
		case (ch == ' ' || ch == '\t') && !quoted && !escaped:
			white = true
			end()
		case ch == '\\' && !escaped:
			escaped = true
		default:
			if white {
				end()
				inArg, white = true, false
			}
			cur = append(cur, ch)
			escaped = false
		}
	}
	end()
	return args
}
