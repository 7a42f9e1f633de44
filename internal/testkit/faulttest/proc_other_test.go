//go:build !linux

package faulttest

import "os/exec"

// setDeathSignal does nothing where the kernel has no parent-death signal;
// the test cleanups stop the children.
func setDeathSignal(cmd *exec.Cmd) {}
