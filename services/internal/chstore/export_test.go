package chstore

import "time"

// SetClusterDDLTimeout shortens the wait for ON CLUSTER statements in a
// test and returns the function that restores it.
func SetClusterDDLTimeout(d time.Duration) (restore func()) {
	old := clusterDDLTimeout
	clusterDDLTimeout = d
	return func() { clusterDDLTimeout = old }
}
