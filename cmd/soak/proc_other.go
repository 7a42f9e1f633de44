//go:build !linux

package main

import "os/exec"

// setDeathSignal does nothing where the kernel has no parent-death signal;
// the soak stops its children when it ends.
func setDeathSignal(cmd *exec.Cmd) {}
