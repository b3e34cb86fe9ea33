//go:build !linux

package main

import "syscall"

// childProcAttr leaves mailmon in the harness's process group: the process
// group and parent-death settings used on Linux are not portable.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{}
}
