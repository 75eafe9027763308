package walnut_test

// The import DAG is policy, checked here as Go's own
// go/build/deps_test.go checks the standard library's: a new edge needs a
// design decision, not an edit to make the build pass.

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const module = "github.com/walnutproxy/walnut"

// allowed maps each package (relative to the module) to the non-standard
// packages its non-test code may import directly. "std" is implied. A
// package missing from this map fails the test.
var allowed = map[string][]string{
	"hashkit":             {"github.com/dgryski/go-farm", "internal/bytesconv"},
	"shard":               {"hashkit", "internal/bytesconv"},
	"protocol":            {},
	"protocol/resp":       {"protocol", "internal/bytesconv", "internal/bufgrow"},
	"protocol/memcache":   {"protocol", "internal/bytesconv", "internal/bufgrow"},
	"pool":                {"internal/rawio", "internal/bufgrow"},
	"config":              {"hashkit", "shard", "go.yaml.in/yaml/v3"},
	"proxy":               {"hashkit", "shard", "protocol", "protocol/resp", "protocol/memcache", "pool", "config", "internal/bytesconv", "internal/rawio", "internal/evloop", "internal/memconn", "golang.org/x/sys/unix"},
	"proxy/metrics":       {"proxy", "github.com/prometheus/client_golang"},
	"proxy/fleet":         {"proxy", "proxy/metrics", "config", "github.com/prometheus/client_golang"},
	"cmd/walnut":          {"proxy", "proxy/fleet", "config", "github.com/spf13/pflag"},
	"adapter/goredis":     {"shard", "hashkit", "config", "protocol", "proxy", "github.com/redis/go-redis/v9"},
	"adapter/gomemcache":  {"shard", "hashkit", "config", "protocol", "proxy", "github.com/bradfitz/gomemcache"},
	"internal/bytesconv":  {},
	"internal/bufgrow":    {},
	"internal/rawio":      {},
	"internal/evloop":     {"golang.org/x/sys/unix"},
	"internal/memconn":    {},
	"internal/testserver": {},
	"bench":               {"*"},
	"examples/*":          {"*"},
}

// clientLibs are the client libraries used as independent implementations:
// only tests, examples/ and bench/ may depend on them, and the adapter that
// plugs walnut's placement into each (adapterFor), so that only programs
// importing that adapter compile the library.
var clientLibs = []string{"github.com/redis/go-redis/", "github.com/bradfitz/gomemcache/"}

// adapterFor names the one package outside tests, examples/ and bench/ that
// may depend on each client library.
var adapterFor = map[string]string{
	"github.com/redis/go-redis/":      "adapter/goredis",
	"github.com/bradfitz/gomemcache/": "adapter/gomemcache",
}

// benchOnlyLibs are client libraries kept as benchmark baselines only, to
// measure walnut against: bench/ may import them, from its tests, and no
// other package may, not even from its tests or examples.
var benchOnlyLibs = []string{"github.com/redis/rueidis"}

// benchOnly reports whether pkg imports imp, a benchmark-only library, but
// is not in bench/.
func benchOnly(pkg, imp string) bool {
	if pkg == "bench" || strings.HasPrefix(pkg, "bench/") {
		return false
	}
	for _, lib := range benchOnlyLibs {
		if imp == lib || strings.HasPrefix(imp, lib+"/") {
			return true
		}
	}
	return false
}

type listedPackage struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Deps         []string
}

func listPackages(t *testing.T) []listedPackage {
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("go list: %v\n%s", err, ee.Stderr)
	}
	require.NoError(t, err)
	var pkgs []listedPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else {
			require.NoError(t, err)
		}
		pkgs = append(pkgs, p)
	}
	require.NotEmpty(t, pkgs)
	return pkgs
}

func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func rel(path string) string {
	return strings.TrimPrefix(strings.TrimPrefix(path, module), "/")
}

func policyFor(pkg string) ([]string, bool) {
	if rules, ok := allowed[pkg]; ok {
		return rules, true
	}
	if strings.HasPrefix(pkg, "examples/") {
		return allowed["examples/*"], true
	}
	if strings.HasPrefix(pkg, "bench/") {
		return allowed["bench"], true
	}
	return nil, false
}

func permits(rules []string, imp string) bool {
	for _, r := range rules {
		if r == "*" {
			return true
		}
		if strings.HasPrefix(imp, module+"/") {
			if rel(imp) == r {
				return true
			}
		} else if imp == r || strings.HasPrefix(imp, r+"/") {
			return true
		}
	}
	return false
}

func TestImportPolicy(t *testing.T) {
	for _, p := range listPackages(t) {
		pkg := rel(p.ImportPath)
		for _, imp := range slices.Concat(p.Imports, p.TestImports, p.XTestImports) {
			if benchOnly(pkg, imp) {
				t.Errorf("%s imports %s, a benchmark baseline only bench/ may import", p.ImportPath, imp)
			}
		}
		if pkg == "" {
			continue // this test-only root package
		}
		rules, ok := policyFor(pkg)
		if !ok {
			t.Errorf("package %s has no import policy in deps_test.go; add one", pkg)
			continue
		}
		tooling := pkg == "bench" || strings.HasPrefix(pkg, "bench/") || strings.HasPrefix(pkg, "examples/")
		for _, imp := range p.Imports {
			if isStd(imp) {
				continue
			}
			if !permits(rules, imp) {
				t.Errorf("%s imports %s, which its policy does not allow", pkg, imp)
			}
			if strings.HasPrefix(imp, module+"/examples") || strings.HasPrefix(imp, module+"/bench") {
				t.Errorf("%s imports %s: nothing may import examples/ or bench/", pkg, imp)
			}
			if rel(imp) == "internal/testserver" && !tooling {
				t.Errorf("%s imports internal/testserver outside tests", pkg)
			}
		}
		if tooling {
			continue
		}
		for _, dep := range p.Deps {
			for _, lib := range clientLibs {
				if strings.HasPrefix(dep, lib) && adapterFor[lib] != pkg {
					t.Errorf("%s depends on %s: client libraries belong only in tests, examples/ and bench/", pkg, dep)
				}
			}
		}
	}
}

func TestImportPolicyRejects(t *testing.T) {
	// The checker itself must be able to fail.
	require.False(t, permits(allowed["hashkit"], module+"/shard"), "hashkit must not import shard")
	require.False(t, permits(allowed["shard"], module+"/proxy"))
	require.False(t, permits(allowed["config"], module+"/proxy"), "proxy imports config, never the reverse")
	require.False(t, permits(allowed["adapter/goredis"], module+"/proxy/fleet"), "the adapters serve one pool with the proxy, never a fleet")
	require.False(t, permits(allowed["proxy"], module+"/adapter/goredis"), "the adapters are built on the proxy, never the reverse")
	require.False(t, permits(allowed["proxy"], module+"/proxy/fleet"), "proxy serves one pool; the fleet is built on it")
	require.False(t, permits(allowed["proxy"], "github.com/prometheus/client_golang/prometheus"), "only programs that import proxy/metrics compile Prometheus")
	require.False(t, permits(allowed["pool"], module+"/protocol"), "pool gets its framer injected")
	require.False(t, permits(allowed["shard"], "github.com/redis/go-redis/v9"))
	require.True(t, permits(allowed["hashkit"], "github.com/dgryski/go-farm"))
	require.True(t, benchOnly("proxy", "github.com/redis/rueidis"))
	require.True(t, benchOnly("examples/ring", "github.com/redis/rueidis/rueidiscompat"))
	require.False(t, benchOnly("bench", "github.com/redis/rueidis"))
	_, ok := policyFor("newpkg")
	require.False(t, ok)
}

// TestReadmeLayout: the README's Layout table has a row for every package
// of the module, and no row for a package that is gone.
func TestReadmeLayout(t *testing.T) {
	b, err := os.ReadFile("README.md")
	require.NoError(t, err)
	readme := string(b)
	i := strings.Index(readme, "## Layout")
	require.GreaterOrEqual(t, i, 0, "README.md has no Layout section")
	section := readme[i:]
	if j := strings.Index(section[3:], "\n## "); j >= 0 {
		section = section[:j+3]
	}
	rows := map[string]bool{}
	for line := range strings.SplitSeq(section, "\n") {
		if f := strings.Split(line, "|"); len(f) > 2 && strings.HasPrefix(strings.TrimSpace(f[1]), "`") {
			name := strings.Trim(strings.TrimSpace(f[1]), "`")
			name, _, _ = strings.Cut(name, "`") // "`.` (the module root)"
			rows[name] = true
		}
	}
	for _, p := range listPackages(t) {
		name := rel(p.ImportPath)
		if name == "" {
			name = "."
		}
		assert.True(t, rows[name], "README Layout has no row for package %s", name)
		delete(rows, name)
	}
	assert.Empty(t, rows, "README Layout lists packages that do not exist")
}
