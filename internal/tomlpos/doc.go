// Package tomlpos decodes TOML strictly (unknown keys and wrong types are
// errors) and says where every key was written, so that configuration and
// flow problems come out as file:line:col.
package tomlpos

// One parser, github.com/pelletier/go-toml/v2: Unmarshal gives the values,
// and its unstable.Parser gives every key's place, walked the first time a
// position is asked for (most documents never are). The other candidate
// was BurntSushi/toml for values plus a hand-written key scanner. Measured
// on 2 shared cores, medians of 5 runs interleaved with each other:
//
//	10,000 flow files (flows BenchmarkLoadRegistry)   time     B/op    allocs/op
//	BurntSushi + scanner                              2.48 s   991 MB  12.2 M
//	go-toml, keys indexed while loading               ~1.5x*   460 MB   6.5 M
//	go-toml, keys indexed when asked (kept)           0.77 s   281 MB   4.5 M
//	before: hand-written parser, BurntSushi fallback  0.79 s   367 MB   6.5 M
//
//	one flow file (BenchmarkParse, BenchmarkIndex)    time     B/op    allocs/op
//	BurntSushi + scanner                              350 µs   81 KB   978
//	go-toml                                            47 µs  9.3 KB   205
//	go-toml's key positions, when asked                67 µs   18 KB   193
//
// (*the time of the kept way, measured side by side on a busier machine.)
// BurntSushi alone is past the 2 s budget for loading ten thousand flows,
// which is why a hand-written parser once sat in front of it; go-toml is
// as fast as that parser was, with half the allocations. A reload after
// one edit is decided by the loader, not the parser (flows reads again
// only what changed). go-toml's syntax messages are terser ("array is
// incomplete") but carry an exact column.
