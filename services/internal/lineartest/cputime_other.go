//go:build !linux

package lineartest

import "time"

func threadCPUTime() time.Duration { return 0 }

const haveThreadCPUTime = false
