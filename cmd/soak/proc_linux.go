package main

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill a child when the soak dies, so a
// crashed or interrupted soak leaves no redis-server or tokenledger behind.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
