package peers

import "syscall"

// procAttr puts a peer in its own process group, so a Ctrl-C meant for
// loadtest reaches only loadtest, which then stops the peer in order; and
// Pdeathsig stops the peer if its parent (loadtest or a test binary) dies
// without cleaning up.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
