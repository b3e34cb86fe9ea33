package lab

import "syscall"

// procAttr puts a child server in its own process group, so a Ctrl-C meant
// for the lab reaches only the lab, which then stops the child by its pid
// in order; Pdeathsig stops it if the lab dies without cleaning up.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
