package config

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// maxUnixPath is the longest unix socket path: sockaddr_un.sun_path is
// 108 bytes on Linux, including the terminating NUL. nutcracker rejects
// longer paths, and so would net.Listen.
const maxUnixPath = 107

// listen parses a listen value into pool. It returns a message saying
// what is wrong, or "".
func (p *parser) listen(pool *Pool, value string) string {
	if strings.HasPrefix(value, "/") {
		return listenUnix(pool, value)
	}
	i := strings.LastIndexByte(value, ':')
	if i < 0 {
		return quote(value) + ` is neither "host:port" nor an absolute unix socket path`
	}
	host, portText := value[:i], value[i+1:]
	port, ok := parsePort(portText)
	if !ok {
		return quote(value) + " has an invalid port " + quote(portText) + ": want a number from 1 to 65535"
	}
	bare := host
	if len(bare) >= 2 && bare[0] == '[' && bare[len(bare)-1] == ']' {
		bare = bare[1 : len(bare)-1]
	}
	if bare == "" {
		return fmt.Sprintf("%s has no host before the port; write an address such as 127.0.0.1:%d", quote(value), port)
	}
	if ip, ok := inetAton(bare); ok {
		// getaddrinfo reads IPv4 addresses as inet_aton does, with
		// shorthands Go's resolver does not know; spell it out.
		bare = ip.String()
	} else if ip, err := netip.ParseAddr(bare); err == nil {
		if msg := checkZone(ip); msg != "" {
			return "host " + quote(bare) + " " + msg
		}
	} else if !p.listenUnresolved {
		ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
		defer cancel()
		addrs, err := p.lookup(ctx, bare)
		if err == nil && len(addrs) == 0 {
			err = errors.New("no addresses")
		}
		if err != nil {
			return "host " + quote(bare) + " does not resolve: " + err.Error()
		}
	}
	pool.Listen = value
	pool.ListenNetwork = "tcp"
	pool.ListenAddr = net.JoinHostPort(bare, strconv.Itoa(port))
	pool.ListenPerm = 0
	return ""
}

// parsePort parses a port: ASCII digits, 1 to 65535.
func parsePort(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
		if n > 65535 {
			return 0, false
		}
	}
	return n, n >= 1
}

// listenUnix parses "/path" or "/path PERM" into pool.
func listenUnix(pool *Pool, value string) string {
	path, perm := value, os.FileMode(0)
	if i := strings.LastIndexByte(value, ' '); i >= 0 {
		path = value[:i]
		n, ok := strtolOctal(value[i+1:])
		if !ok || n > 0o777 {
			return quote(value) + " has an invalid file permission " + quote(value[i+1:]) + ` in "socket_path permission": want an octal number from 0 to 0777`
		}
		perm = os.FileMode(n)
	}
	if len(path) > maxUnixPath {
		return fmt.Sprintf("the unix socket path is %d bytes long; the maximum is %d", len(path), maxUnixPath)
	}
	pool.Listen = value
	pool.ListenNetwork = "unix"
	pool.ListenAddr = path
	pool.ListenPerm = perm
	return ""
}

// strtolOctal reads s as C's strtol(s, NULL, 8) does, as nutcracker reads
// a socket permission: it skips leading white space, takes an optional
// sign and then the octal digits up to the first other character; no
// digits at all is 0. ok is false for a value strtol cannot represent and
// for a negative one other than -0, which nutcracker would wrap into a
// mode_t.
func strtolOctal(s string) (n uint64, ok bool) {
	i := 0
	for i < len(s) && strings.IndexByte(" \t\n\v\f\r", s[i]) >= 0 {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	for ; i < len(s) && s[i] >= '0' && s[i] <= '7'; i++ {
		if n > (1<<63-1)>>3 {
			return 0, false
		}
		n = n<<3 | uint64(s[i]-'0')
	}
	if neg && n != 0 {
		return 0, false
	}
	return n, true
}

// inetAton parses s as glibc's getaddrinfo parses a numeric IPv4 host
// (__inet_aton_exact): one to four parts separated by dots, each in C
// notation (0x… hex, 0… octal, else decimal); the last part fills the
// remaining bytes, so "127.1" is 127.0.0.1 and "2130706433" is too.
func inetAton(s string) (netip.Addr, bool) {
	var parts []uint64
	var last uint64
	for {
		if s == "" || s[0] < '0' || s[0] > '9' {
			return netip.Addr{}, false
		}
		v, rest, ok := strtoul(s)
		if !ok {
			return netip.Addr{}, false
		}
		s = rest
		if s == "" || s[0] != '.' {
			last = v
			break
		}
		if len(parts) == 3 || v > 0xff {
			return netip.Addr{}, false
		}
		parts = append(parts, v)
		s = s[1:]
	}
	if s != "" || last > uint64(0xffffffff)>>(8*len(parts)) {
		return netip.Addr{}, false
	}
	word := uint32(last)
	for i, p := range parts {
		word |= uint32(p) << (24 - 8*i)
	}
	return netip.AddrFrom4([4]byte{byte(word >> 24), byte(word >> 16), byte(word >> 8), byte(word)}), true
}

// strtoul reads the number at the start of s, which starts with a digit,
// as C's strtoul(s, &end, 0) does, and returns the rest of s. ok is false
// for a value above 0xffffffff.
func strtoul(s string) (n uint64, rest string, ok bool) {
	base, i := uint64(10), 0
	switch {
	case len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && digitValue(s[2]) < 16:
		base, i = 16, 2
	case s[0] == '0':
		base = 8
	}
	for ; i < len(s) && digitValue(s[i]) < base; i++ {
		n = n*base + digitValue(s[i])
		if n > 0xffffffff {
			return 0, "", false
		}
	}
	return n, s[i:], true
}

// digitValue returns the value of the hex digit c, or 16.
func digitValue(c byte) uint64 {
	switch {
	case c >= '0' && c <= '9':
		return uint64(c - '0')
	case c >= 'a' && c <= 'f':
		return uint64(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return uint64(c-'A') + 10
	}
	return 16
}

// checkZone checks the zone of an IPv6 address as glibc's getaddrinfo
// does (__inet6_scopeid_pton): the name of an interface of this machine,
// for a link-local address only, or a decimal number. It returns what is
// wrong, or "".
func checkZone(ip netip.Addr) string {
	zone := ip.Zone()
	if zone == "" {
		return ""
	}
	if ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() {
		if _, err := net.InterfaceByName(zone); err == nil {
			return ""
		}
	}
	if _, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return ""
	}
	return "has an invalid zone " + quote(zone) + ": want a decimal number, or the name of a network interface for a link-local address"
}
