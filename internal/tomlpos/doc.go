// Package tomlpos decodes TOML strictly (unknown keys and wrong types are
// errors) and says where every key was written, so that configuration and
// flow problems come out as file:line:col.
package tomlpos

// One parser: github.com/pelletier/go-toml/v2. Unmarshal gives the values,
// and its unstable.Parser gives every key's place when a position is first
// asked for (most documents never are). The other candidate was
// BurntSushi/toml for values plus a hand-written key scanner; go-toml was
// chosen on the flows benchmarks (10,000 copies of seed 004's support
// flow, 2 shared cores, -count 5, medians):
//
//	                          full load (BenchmarkLoadRegistry)
//	BurntSushi + scanner      3.75 s   991 MB   12.2 M allocs
//	go-toml, index at once    1.47 s   556 MB    6.5 M allocs
//
// BurntSushi alone was past the 2 s budget for loading ten thousand flows;
// it is why a hand-written fast parser once sat in front of it. go-toml's
// syntax messages are terser ("array is incomplete") but carry an exact
// column.
