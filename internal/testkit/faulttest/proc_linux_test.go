package faulttest

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill a child when the test process dies,
// so a crashed or timed-out test binary leaves no tokenledger behind.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
