//go:build !linux

package loadtest

import (
	"errors"
	"os/exec"
	"time"
)

var errNoProc = errors.New("measuring a process needs Linux /proc")

func canMeasureChild() bool                            { return false }
func ownProcessGroup(*exec.Cmd)                        {}
func procCPU(int) (user, sys time.Duration, err error) { return 0, 0, errNoProc }
func procMem(int) (rss, hwm int64, err error)          { return 0, 0, errNoProc }

type usage struct {
	cpu    time.Duration
	maxRSS int64
}

func selfUsage() usage { return usage{} }
