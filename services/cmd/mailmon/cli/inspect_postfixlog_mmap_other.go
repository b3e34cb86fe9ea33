//go:build !unix

package cli

import "os"

func eachMappedLine(*os.File, func(string) bool) (bool, error) { return false, nil }
