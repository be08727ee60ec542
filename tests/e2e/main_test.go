package e2e

import (
	"os"
	"testing"

	"github.com/cairnkv/cairn/tests/framework"
)

func TestMain(m *testing.M) {
	code := m.Run()
	framework.RemoveBinaries()
	os.Exit(code)
}
