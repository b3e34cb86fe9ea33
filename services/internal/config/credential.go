package config

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// maxCredentialSize bounds a credential file read for ${env:NAME}; a
// password or a key is a few dozen bytes.
const maxCredentialSize = 64 << 10

// lookupEnvOrCredential resolves ${env:NAME}: the environment first, then
// the systemd credential NAME, the file $CREDENTIALS_DIRECTORY/NAME that a
// unit's LoadCredential=NAME:PATH provides. So a secret reaches a service
// without ever being in its environment (which other processes of the same
// user, crash reports and `systemctl show` can read), and the same config
// works from a shell with the variable set. One trailing newline is
// dropped, as from password_file. A credential that cannot be read (or is
// larger than 64 KiB) counts as absent, and the reference is reported as
// not set.
func lookupEnvOrCredential(name string) (string, bool) {
	if v, ok := os.LookupEnv(name); ok {
		return v, true
	}
	dir := os.Getenv("CREDENTIALS_DIRECTORY")
	if dir == "" || name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return "", false
	}
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return "", false
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCredentialSize+1))
	if err != nil || len(data) > maxCredentialSize {
		return "", false
	}
	data = bytes.TrimSuffix(data, []byte("\n"))
	data = bytes.TrimSuffix(data, []byte("\r"))
	return string(data), true
}
