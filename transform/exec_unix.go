//go:build unix

package transform

import (
	"fmt"
	"os/exec"
	"syscall"
)

// killGroupOnCancel starts the command in its own process group and, when
// its context ends, kills the whole group: `sh -c 'a | b'` leaves no
// orphans behind when trawl is interrupted or the command times out.
func killGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// exitDescription says how a command ended.
func exitDescription(ee *exec.ExitError) string {
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("killed by signal %s", ws.Signal())
	}
	return fmt.Sprintf("exited with status %d", ee.ExitCode())
}
