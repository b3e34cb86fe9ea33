//go:build !linux

package lab

import "syscall"

// procAttr puts a child server in its own process group, so a Ctrl-C meant
// for the lab reaches only the lab, which then stops the child by its pid.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
