package chstore_test

import (
	"os"
	"testing"

	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/chtest"
)

// server is shared by the tests that only need a database of their own
// (chtest.NewDatabase); tests of the server lifecycle start their own.
var server *chstore.LocalServer

func TestMain(m *testing.M) { os.Exit(chtest.RunWithServer(m, &server)) }
