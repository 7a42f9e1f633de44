//go:build !linux

package redistest

import "os/exec"

// setDeathSignal does nothing where the kernel has no parent-death signal;
// Main and the test cleanups stop the servers.
func setDeathSignal(cmd *exec.Cmd) {}
