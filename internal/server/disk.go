package server

import (
	"github.com/rs/zerolog"
)

// lowDisk is when a filesystem is nearly full: under 256 MiB or 2 % free.
// Asterisk then stores messages without audio and the database stops
// taking records (they wait in the spool), so admins must hear of it
// before callers do.
func lowDisk(free, total uint64) bool {
	return free < 256<<20 || (total > 0 && free*50 < total)
}

// diskReport is /healthz's view of a directory's filesystem; nil when dir
// is unset or unreadable.
func diskReport(dir string) map[string]any {
	if dir == "" {
		return nil
	}
	free, total, err := diskSpace(dir)
	if err != nil {
		return map[string]any{"dir": dir, "error": err.Error()}
	}
	return map[string]any{"dir": dir, "free_bytes": free, "total_bytes": total, "low": lowDisk(free, total)}
}

// freeBytes is a metrics gauge of dir's free space (-1: unknown).
func freeBytes(dir string) func() float64 {
	if dir == "" {
		return nil
	}
	return func() float64 {
		free, _, err := diskSpace(dir)
		if err != nil {
			return -1
		}
		return float64(free)
	}
}

// warnLowDisk logs each nearly full filesystem among dirs (name: dir).
func warnLowDisk(log zerolog.Logger, dirs map[string]string) {
	for name, dir := range dirs {
		if dir == "" {
			continue
		}
		if free, total, err := diskSpace(dir); err == nil && lowDisk(free, total) {
			log.Warn().Str("disk", name).Str("dir", dir).Uint64("free_bytes", free).Uint64("total_bytes", total).
				Msg("disk nearly full: messages may be recorded without audio and records wait in the spool")
		}
	}
}
