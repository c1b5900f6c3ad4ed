//go:build !unix

package transform

import (
	"fmt"
	"os/exec"
)

// killGroupOnCancel keeps exec.Cmd's default: only the command is killed.
func killGroupOnCancel(*exec.Cmd) {}

// exitDescription says how a command ended.
func exitDescription(ee *exec.ExitError) string {
	return fmt.Sprintf("exited with status %d", ee.ExitCode())
}
