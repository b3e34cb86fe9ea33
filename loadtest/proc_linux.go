package main

import "syscall"

// childProcAttr puts mailmon in its own process group, so a Ctrl-C reaches
// only the harness, which then stops mailmon in order. Pdeathsig stops
// mailmon if the harness dies without cleaning up.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
