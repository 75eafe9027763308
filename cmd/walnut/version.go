package main

import (
	"regexp"
	"runtime/debug"
	"strings"
)

// defaultVersion is walnut's version when the build does not set one.
const defaultVersion = "0.2.0"

// version is printed by -V, -h and -D, logged at start and reported by
// the stats server. A release build sets it with
//
//	go build -ldflags "-X main.version=1.2.3" ./cmd/walnut
//
// Without -X, a binary installed from a tagged module
// (go install github.com/walnutproxy/walnut/cmd/walnut@v1.2.3) reports its
// tag, and any other build defaultVersion; see init.
var version = defaultVersion

// releaseTag matches the module version of a tagged release, "v1.2.3";
// pseudo-versions ("v0.0.0-20250101000000-abcdef123456") and the "+dirty"
// versions of a build from a modified checkout do not match.
var releaseTag = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+$`)

func init() {
	if version != defaultVersion {
		return // set with -X
	}
	if bi, ok := debug.ReadBuildInfo(); ok && releaseTag.MatchString(bi.Main.Version) {
		version = strings.TrimPrefix(bi.Main.Version, "v")
	}
}
