//go:build !linux

package chstore

import "syscall"

// childProcAttr: the local server is a Linux (Debian) feature; elsewhere the
// child simply shares mailmon's process group.
func childProcAttr() *syscall.SysProcAttr { return nil }
