//go:build unix && !linux

package cli

func madviseSequential([]byte) error { return nil }
