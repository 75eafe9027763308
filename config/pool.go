package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/walnutproxy/walnut/hashkit"
	"github.com/walnutproxy/walnut/shard"
)

// keyNames lists the keys of a pool in twemproxy's order.
var keyNames = []string{
	"listen", "hash", "hash_tag", "distribution", "timeout", "backlog",
	"client_connections", "redis", "tcpkeepalive", "reuseport", "redis_auth",
	"redis_db", "preconnect", "auto_eject_hosts", "server_connections",
	"server_retry_timeout", "server_failure_limit", "servers",
	// walnut's own keys; nutcracker rejects them.
	"client_timeout", "client_output_watermark", "client_output_limit",
	"client_request_limit", "max_pinned_connections",
	"redis_refuse_commands",
}

// Defaults of the keys, as in twemproxy's nc_conf.h.
const (
	defaultBacklog            = 512
	defaultServerConnections  = 1
	defaultServerRetryTimeout = 30000 * time.Millisecond
	defaultServerFailureLimit = 2
)

// parsedPool is a pool with the lines the cross-pool checks report.
type parsedPool struct {
	Pool
	listenLine int
}

// pools checks the root mapping and returns its pools, sorted.
func (p *parser) pools(root *yaml.Node) ([]Pool, error) {
	if root.Kind != yaml.MappingNode {
		return nil, p.errorf(root.Line, "", "", "the file must be a mapping from pool names to pools, but it holds %s", describe(root))
	}
	var parsed []parsedPool
	names := make(map[string]int) // pool name -> line
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			return nil, p.errorf(k.Line, "", "", "a pool name must be a non-empty string, not %s", describe(k))
		}
		if first, dup := names[k.Value]; dup {
			return nil, p.errorf(k.Line, k.Value, "", "the pool name is used twice (first on line %d)", first)
		}
		names[k.Value] = k.Line
		pp, err := p.pool(k, v)
		if err != nil {
			return nil, err
		}
		parsed = append(parsed, pp)
	}
	if len(parsed) == 0 {
		return nil, p.errorf(root.Line, "", "", "the file has no pools")
	}
	listens := make(map[string]*parsedPool)
	for i := range parsed {
		pp := &parsed[i]
		if pp.Listen == "" {
			continue
		}
		if first, dup := listens[pp.Listen]; dup {
			return nil, p.errorf(pp.listenLine, pp.Name, "listen", "%q is also the listen address of pool %q (line %d)", pp.Listen, first.Name, first.listenLine)
		}
		listens[pp.Listen] = pp
	}
	pools := make([]Pool, len(parsed))
	for i := range parsed {
		pools[i] = parsed[i].Pool
	}
	slices.SortStableFunc(pools, func(a, b Pool) int { return lessName(a.Name, b.Name) })
	return pools, nil
}

// pool parses the pool named by k, whose value is v.
func (p *parser) pool(k, v *yaml.Node) (parsedPool, error) {
	name := k.Value
	pp := parsedPool{Pool: Pool{
		Name:               name,
		Line:               k.Line,
		Hash:               hashkit.Default,
		DistributionName:   shard.Ketama.String(),
		Distribution:       shard.Ketama,
		Backlog:            defaultBacklog,
		ServerConnections:  defaultServerConnections,
		ServerRetryTimeout: defaultServerRetryTimeout,
		ServerFailureLimit: defaultServerFailureLimit,
	}}
	var err error
	if pp.HashFunc, err = hashkit.ByName(hashkit.Default); err != nil {
		return pp, p.errorf(k.Line, name, "hash", "the default hash %q is missing: %v", hashkit.Default, err)
	}
	if v.Kind != yaml.MappingNode {
		if v.Kind == yaml.ScalarNode && v.Value == "" {
			return pp, p.errorf(k.Line, name, "", "the pool has no keys; it needs at least listen and servers")
		}
		return pp, p.errorf(v.Line, name, "", "a pool must be a mapping of keys (listen, servers, ...), not %s", describe(v))
	}
	seen := make(map[string]int) // key -> line
	var authLine, refuseLine int
	for i := 0; i+1 < len(v.Content); i += 2 {
		kn, vn := v.Content[i], v.Content[i+1]
		if kn.Kind != yaml.ScalarNode || kn.Value == "" {
			return pp, p.errorf(kn.Line, name, "", "a key must be a non-empty string, not %s", describe(kn))
		}
		key := kn.Value
		if !slices.Contains(keyNames, key) {
			return pp, p.errorf(kn.Line, name, key, "%s", unknownKey(key))
		}
		if first, dup := seen[key]; dup {
			return pp, p.errorf(kn.Line, name, key, "the key is given twice (first on line %d)", first)
		}
		seen[key] = kn.Line
		if key == "servers" {
			if err := p.servers(&pp.Pool, kn, vn); err != nil {
				return pp, err
			}
			continue
		}
		if key == "redis_refuse_commands" {
			refuseLine = kn.Line
			if err := p.refuseCommands(&pp.Pool, kn, vn); err != nil {
				return pp, err
			}
			continue
		}
		switch vn.Kind {
		case yaml.SequenceNode:
			return pp, p.errorf(vn.Line, name, key, `the value must be a single value, not a list (only "servers" and "redis_refuse_commands" are lists)`)
		case yaml.MappingNode:
			return pp, p.errorf(vn.Line, name, key, "the value must be a single value; a mapping here nests deeper than pool and key (depth greater than 2)")
		}
		if vn.Value == "" {
			return pp, p.errorf(kn.Line, name, key, "the value is empty")
		}
		if key == "listen" {
			pp.listenLine = vn.Line
		}
		if key == "redis_auth" {
			authLine = kn.Line
		}
		if msg := p.set(&pp.Pool, key, vn.Value); msg != "" {
			return pp, p.errorf(vn.Line, name, key, "%s", msg)
		}
	}
	if pp.Listen == "" && !p.listenOptional {
		return pp, p.errorf(k.Line, name, "listen", "the key is missing: every pool needs a listen address")
	}
	if len(pp.Servers) == 0 {
		return pp, p.errorf(k.Line, name, "servers", "the key is missing: every pool needs a list of servers")
	}
	if pp.RedisAuth != "" && !pp.Redis {
		return pp, p.errorf(authLine, name, "redis_auth", "the key is only valid in a redis pool (add redis: true)")
	}
	if refuseLine > 0 && !pp.Redis {
		return pp, p.errorf(refuseLine, name, "redis_refuse_commands", "the key is only valid in a redis pool (add redis: true)")
	}
	// What is left for shard.NewRing to refuse is a weight too large for
	// its continuum arithmetic; nutcracker accepts any int32 weight.
	if _, err := shard.NewRing(pp.Servers, pp.RingOptions()); err != nil {
		line := k.Line
		for i, s := range pp.Servers {
			if _, err := shard.NewRing([]shard.Server{s}, pp.RingOptions()); err != nil {
				line = pp.ServerLines[i]
				break
			}
		}
		return pp, p.errorf(line, name, "servers", "the servers cannot be placed on a ring: %s", strings.TrimPrefix(err.Error(), "shard: "))
	}
	return pp, nil
}

// unknownKey explains why key is not a pool key.
func unknownKey(key string) string {
	for _, k := range keyNames {
		if strings.EqualFold(k, key) {
			return "the key is unknown (keys are case-sensitive: did you mean \"" + k + "\"?)"
		}
	}
	return "the key is unknown; valid keys: " + strings.Join(keyNames, ", ")
}

// set stores the value of key (any key but servers) in pool. It returns
// a message saying what is wrong, or "".
func (p *parser) set(pool *Pool, key, value string) string {
	switch key {
	case "listen":
		return p.listen(pool, value)
	case "hash":
		f, err := hashkit.ByName(value)
		if err != nil {
			return quote(value) + " is not a valid hash; valid: " + strings.Join(hashkit.Names(), ", ")
		}
		pool.Hash, pool.HashFunc = value, f
	case "hash_tag":
		if len(value) != 2 {
			return quote(value) + ` is not a valid hash tag: it must be exactly two bytes, such as "{}"`
		}
		pool.HashTag = value
	case "distribution":
		d, err := shard.ParseDistribution(value)
		if err != nil {
			return quote(value) + " is not a valid distribution; valid: ketama, modula, random"
		}
		pool.Distribution, pool.DistributionName = d, value
	case "redis_auth":
		pool.RedisAuth = value
	case "redis", "tcpkeepalive", "reuseport", "preconnect", "auto_eject_hosts":
		var b bool
		switch value {
		case "true":
			b = true
		case "false":
		default:
			return quote(value) + ` is not "true" or "false" (exactly, in lowercase)`
		}
		switch key {
		case "redis":
			pool.Redis = b
		case "tcpkeepalive":
			pool.TCPKeepalive = b
		case "reuseport":
			pool.Reuseport = b
		case "preconnect":
			pool.Preconnect = b
		case "auto_eject_hosts":
			pool.AutoEjectHosts = b
		}
	default: // the numbers
		n, msg := parseNumber(value)
		if msg != "" {
			return msg
		}
		switch key {
		case "timeout":
			pool.Timeout = time.Duration(n) * time.Millisecond
		case "backlog":
			pool.Backlog = n
		case "client_connections":
			pool.ClientConnections = n
		case "redis_db":
			pool.RedisDB = n
		case "server_connections":
			if n == 0 {
				return "the value cannot be 0: each server needs at least one connection"
			}
			pool.ServerConnections = n
		case "server_retry_timeout":
			pool.ServerRetryTimeout = time.Duration(n) * time.Millisecond
		case "server_failure_limit":
			pool.ServerFailureLimit = n
		case "client_timeout":
			pool.ClientTimeout = time.Duration(n) * time.Millisecond
		case "client_output_watermark":
			pool.ClientOutputWatermark = n
		case "client_output_limit":
			pool.ClientOutputLimit = n
		case "client_request_limit":
			pool.ClientRequestLimit = n
		case "max_pinned_connections":
			pool.MaxPinnedConnections = n
		}
	}
	return ""
}

// servers parses the servers list v of pool; k is its key.
func (p *parser) servers(pool *Pool, k, v *yaml.Node) error {
	switch {
	case v.Kind == yaml.ScalarNode && v.Value == "":
		return p.errorf(k.Line, pool.Name, "servers", `the list is empty: write one "- host:port:weight [name]" entry per line below it`)
	case v.Kind != yaml.SequenceNode:
		return p.errorf(v.Line, pool.Name, "servers", `the value must be a list, one "- host:port:weight [name]" entry per line, not %s`, describe(v))
	}
	servers := make([]shard.Server, 0, len(v.Content))
	lines := make([]int, 0, len(v.Content))
	for _, e := range v.Content {
		switch {
		case e.Kind != yaml.ScalarNode:
			return p.errorf(e.Line, pool.Name, "servers", `each entry must be one "host:port:weight [name]" string, not %s`, describe(e))
		case e.Value == "":
			return p.errorf(e.Line, pool.Name, "servers", "an entry is empty")
		}
		s, err := shard.ParseServer(e.Value)
		if err != nil {
			return p.errorf(e.Line, pool.Name, "servers", "%s", strings.TrimPrefix(err.Error(), "shard: "))
		}
		servers = append(servers, s)
		lines = append(lines, e.Line)
	}
	if len(servers) == 0 {
		return p.errorf(v.Line, pool.Name, "servers", "the list is empty")
	}
	// The order and the duplicate check of shard.ParseServers, keeping
	// each entry's line.
	order, err := shard.RingOrder(servers)
	var dup *shard.DuplicateNameError
	if errors.As(err, &dup) {
		first, second := lines[dup.First], lines[dup.Second]
		return p.errorf(second, pool.Name, "servers", "the servers on lines %d and %d have the same name %q; names must be unique (the weight is not part of the name)", first, second, dup.ID)
	}
	if err != nil {
		return p.errorf(v.Line, pool.Name, "servers", "%s", strings.TrimPrefix(err.Error(), "shard: "))
	}
	for _, i := range order {
		pool.Servers = append(pool.Servers, servers[i])
		pool.ServerLines = append(pool.ServerLines, lines[i])
	}
	return nil
}

// refuseCommands parses the redis_refuse_commands list v of pool; k is
// its key. Each entry is a command name, or a command and a subcommand
// separated by a space or '|' ("script flush"), stored in lower case with
// '|' ("script|flush"). Whether the command exists is checked by the proxy
// (proxy.Config.Validate), which knows Redis's commands.
func (p *parser) refuseCommands(pool *Pool, k, v *yaml.Node) error {
	const form = `one "- command" entry per line, such as "- flushall" or "- script flush"`
	switch {
	case v.Kind == yaml.ScalarNode && v.Value == "":
		return p.errorf(k.Line, pool.Name, "redis_refuse_commands", "the list is empty: write %s below it, or leave the key out", form)
	case v.Kind != yaml.SequenceNode:
		return p.errorf(v.Line, pool.Name, "redis_refuse_commands", "the value must be a list, %s, not %s", form, describe(v))
	}
	seen := make(map[string]int)
	for _, e := range v.Content {
		if e.Kind != yaml.ScalarNode || e.Value == "" {
			return p.errorf(e.Line, pool.Name, "redis_refuse_commands", "each entry must be a command name, not %s", describe(e))
		}
		words := strings.FieldsFunc(strings.ToLower(e.Value), func(r rune) bool { return r == ' ' || r == '|' })
		valid := len(words) == 1 || len(words) == 2
		for _, w := range words {
			for _, r := range w {
				valid = valid && r > ' ' && r < 0x7f
			}
		}
		if !valid {
			return p.errorf(e.Line, pool.Name, "redis_refuse_commands", "%s is not a command name: write a command (\"flushall\") or a command and a subcommand (\"script flush\")", quote(e.Value))
		}
		name := strings.Join(words, "|")
		if first, dup := seen[name]; dup {
			return p.errorf(e.Line, pool.Name, "redis_refuse_commands", "%s is listed twice (first on line %d)", quote(e.Value), first)
		}
		seen[name] = e.Line
		pool.RedisRefuseCommands = append(pool.RedisRefuseCommands, name)
	}
	if len(pool.RedisRefuseCommands) == 0 {
		return p.errorf(v.Line, pool.Name, "redis_refuse_commands", "the list is empty")
	}
	return nil
}

// quote quotes s for a message, cut to 100 characters.
func quote(s string) string {
	return fmt.Sprintf("%.100q", s)
}
