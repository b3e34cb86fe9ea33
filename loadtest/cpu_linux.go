package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// clockTicks is the unit of the CPU times in /proc/PID/stat (USER_HZ),
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// processCPU is the CPU time (user + system, seconds) of pid and, for each
// of its direct children, by command name. ok is false when /proc cannot
// tell.
func processCPU(pid int) (self float64, children map[string]float64, ok bool) {
	self, _, ok = statCPU(pid)
	if !ok {
		return 0, nil, false
	}
	children = map[string]float64{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return self, children, true
	}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cpu, ppid, ok := statCPU(child)
		if !ok || ppid != pid {
			continue
		}
		comm, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		children[strings.TrimSpace(string(comm))] += cpu
	}
	return self, children, true
}

// statCPU reads utime + stime and the parent pid from /proc/PID/stat.
func statCPU(pid int) (cpu float64, ppid int, ok bool) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, 0, false
	}
	// The command name is in parentheses and may hold spaces; the fields
	// after its closing parenthesis are fixed.
	end := strings.LastIndexByte(string(data), ')')
	if end < 0 {
		return 0, 0, false
	}
	fields := strings.Fields(string(data[end+1:]))
	// fields[0] is the state (field 3); ppid is field 4, utime 14, stime 15.
	if len(fields) < 13 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(fields[1])
	utime, err1 := strconv.ParseFloat(fields[11], 64)
	stime, err2 := strconv.ParseFloat(fields[12], 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return (utime + stime) / clockTicks, ppid, true
}

// selfCPU is this process's CPU time so far, in seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
