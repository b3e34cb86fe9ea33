package chstore

import "syscall"

// childProcAttr puts the server in its own process group, so a Ctrl-C in
// the terminal reaches only mailmon, which then stops the server after its
// workers drained. Pdeathsig stops the server if mailmon dies without
// calling Stop, so no orphan keeps the ports and the data dir lock.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
