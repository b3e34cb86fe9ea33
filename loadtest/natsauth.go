package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
)

// connectChildNATS connects to a child mailmon's embedded NATS, which
// accepts no anonymous client, as its admin user: the harness stands in for
// every outside producer and reader. The child generated the password under
// its data_dir, the directory of its config file, on its first start.
func connectChildNATS(configPath string, port int) (*nats.Conn, error) {
	pw, err := os.ReadFile(filepath.Join(filepath.Dir(configPath), "nats", "credentials", "admin"))
	if err != nil {
		return nil, fmt.Errorf("nats password of the child: %w", err)
	}
	return nats.Connect("nats://127.0.0.1:"+strconv.Itoa(port), nats.Name("mailmon-loadtest"),
		nats.UserInfo("admin", strings.TrimSpace(string(pw))))
}
