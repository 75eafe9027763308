// Command placement prints which server nutcracker (and walnut) would pick
// for each key, given a pool's servers: list and settings, with no network
// access.
//
//	go run ./examples/placement -hash fnv1a_64 -distribution ketama -hash-tag '{}' \
//	    -server '127.0.0.1:6379:1' -server '127.0.0.1:6380:1' user:{42}:name foo
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/walnutproxy/walnut/hashkit"
	"github.com/walnutproxy/walnut/shard"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "placement:", err)
		os.Exit(2)
	}
}

type serverList []string

func (s *serverList) String() string     { return strings.Join(*s, ",") }
func (s *serverList) Set(v string) error { *s = append(*s, v); return nil }

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("placement", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	hashName := fs.String("hash", hashkit.Default, "key hash (one of "+strings.Join(hashkit.Names(), ", ")+")")
	distName := fs.String("distribution", "ketama", "ketama, modula or random")
	tag := fs.String("hash-tag", "", `two-character hash tag, such as "{}"`)
	var entries serverList
	fs.Var(&entries, "server", `a servers: entry, "host:port:weight [name]"; repeat for each server`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(entries) == 0 {
		return errors.New("give at least one -server")
	}
	fn, err := hashkit.ByName(*hashName)
	if err != nil {
		return err
	}
	dist, err := shard.ParseDistribution(*distName)
	if err != nil {
		return err
	}
	servers, err := shard.ParseServers(entries...)
	if err != nil {
		return err
	}
	ring, err := shard.NewRing(servers, shard.RingOptions{Hash: fn, Distribution: dist, HashTag: *tag})
	if err != nil {
		return err
	}
	for _, key := range fs.Args() {
		s := ring.LookupString(key)
		fmt.Fprintf(out, "%s\t%s\t%s\n", key, s.ID(), s.Addr)
	}
	return nil
}
