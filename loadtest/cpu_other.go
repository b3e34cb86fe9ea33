//go:build !linux

package main

// processCPU is not measured off Linux.
func processCPU(pid int) (self float64, children map[string]float64, ok bool) {
	return 0, nil, false
}

// selfCPU is not measured off Linux.
func selfCPU() float64 { return 0 }
