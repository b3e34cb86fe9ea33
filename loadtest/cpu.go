package main

// cpuSince notes the CPU times of the harness, the process pid (the mailmon
// child) and its children (its clickhouse-server) and returns a function
// that reports what each used since, or nil where they cannot be read.
func cpuSince(pid int) func() map[string]float64 {
	selfBefore := selfCPU()
	childBefore, kidsBefore, ok := processCPU(pid)
	return func() map[string]float64 {
		if !ok {
			return nil
		}
		childNow, kidsNow, ok := processCPU(pid)
		if !ok {
			return nil
		}
		out := map[string]float64{"loadtest": round(selfCPU()-selfBefore, 2), "mailmon": round(childNow-childBefore, 2)}
		for name, v := range kidsNow {
			out[name] = round(v-kidsBefore[name], 2)
		}
		return out
	}
}
