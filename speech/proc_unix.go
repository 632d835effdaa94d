//go:build unix

package speech

import (
	"os/exec"
	"syscall"
)

// killGroup makes cancellation kill the command's children too (a wrapper
// script's synthesiser), not only the process it started.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
