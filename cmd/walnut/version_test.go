package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
)

// versionShape is the shape of nutcracker's first -V line, "This is
// nutcracker-0.5.0": the name, a dash and MAJOR.MINOR.PATCH.
var versionShape = regexp.MustCompile(`^This is ([a-z]+)-([0-9]+\.[0-9]+\.[0-9]+)$`)

func TestDefaultVersionIsSemantic(t *testing.T) {
	assert.Regexp(t, `^[0-9]+\.[0-9]+\.[0-9]+$`, defaultVersion)
	assert.True(t, releaseTag.MatchString("v"+defaultVersion))
	for _, v := range []string{"(devel)", "v0.0.0-20250101000000-abcdef123456", "v1.2.3+dirty", "v1.2.3-rc.1", "1.2.3", ""} {
		assert.False(t, releaseTag.MatchString(v), v)
	}
}

// TestVersionLineMatchesNutcracker checks that walnut -V has the shape of
// nutcracker -V's first line, so that scripts reading nutcracker's
// version (twemproxy's own test suite strips "This is nutcracker-" and
// compares what is left as a version) read walnut's the same way.
func TestVersionLineMatchesNutcracker(t *testing.T) {
	nutcracker := testserver.RequireBinary(t, "nutcracker")
	dir := t.TempDir()
	code, nutOut := runNutcracker(t, nutcracker, dir, "-V")
	require.Equal(t, 0, code)
	nutFirst, _, _ := strings.Cut(nutOut, "\n")
	m := versionShape.FindStringSubmatch(nutFirst)
	require.NotNil(t, m, "nutcracker -V: %q", nutOut)
	assert.Equal(t, "nutcracker", m[1])

	code, out := runWalnut(t, dir, "-V")
	require.Equal(t, 0, code)
	m = versionShape.FindStringSubmatch(strings.TrimSuffix(out, "\n"))
	require.NotNil(t, m, "walnut -V: %q", out)
	assert.Equal(t, "walnut", m[1])
	assert.Equal(t, version, m[2])
	assert.Equal(t, version, strings.Replace(strings.TrimSpace(out), "This is walnut-", "", 1))
}

// TestVersionSetAtBuildTime builds walnut with -ldflags -X and checks that
// -V prints the version given.
func TestVersionSetAtBuildTime(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "walnut")
	out, err := exec.Command("go", "build", "-o", bin, "-ldflags", "-X main.version=7.8.9", ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	out, err = exec.Command(bin, "-V").Output()
	require.NoError(t, err)
	assert.Equal(t, "This is walnut-7.8.9\n", string(out))
}
