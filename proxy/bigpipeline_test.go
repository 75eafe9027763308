package proxy_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/protocol"
)

// TestPipelinedLargeReplies pipelines GETs whose replies are all large
// (1 MiB or more, which the proxy writes from where they lie rather than
// copying them into the client's output): every reply must arrive, in
// order. A window whose replies were all large used to be skipped, and
// the client waited forever.
func TestPipelinedLargeReplies(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 2)
	_, addr := startProxy(t, protocol.Redis, bs, nil)
	c := rawDial(t, addr)
	vals := []string{strings.Repeat("a", 2<<20), strings.Repeat("b", 1<<20), strings.Repeat("c", 3<<20)}
	for i, v := range vals {
		require.Equal(t, "+OK\r\n", c.do("SET", fmt.Sprintf("big%d", i), v))
	}
	for round := range 2 {
		c.send(cmd("GET", "big0"), cmd("GET", "big1"), cmd("GET", "big2"))
		for i, v := range vals {
			require.Equal(t, fmt.Sprintf("$%d\r\n%s\r\n", len(v), v), c.reply(), "round %d reply %d", round, i)
		}
	}
}
