package proxy_test

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/resp"
)

// TestShutdownUnderContinuousLoad checks that Shutdown ends while clients
// keep pipelining: a session answers what its client sent before Shutdown
// and then closes, instead of being kept alive by the requests the client
// goes on sending until Shutdown's context runs out (and the proxy closes
// every connection at once, losing the replies in flight).
func TestShutdownUnderContinuousLoad(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 2)
	s, addr := startProxy(t, protocol.Redis, bs, nil)
	const clients, pairs = 4, 10
	var batch []byte
	for i := range pairs {
		k := fmt.Sprintf("key%d", i)
		batch = resp.AppendCommandString(batch, "SET", k, "v")
		batch = resp.AppendCommandString(batch, "GET", k)
	}
	var wg sync.WaitGroup
	ends := make([]error, clients)
	for i := range clients {
		c := rawDial(t, addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, err := c.nc.Write(batch); err != nil {
					ends[i] = err
					return
				}
				for range 2 * pairs {
					if _, err := c.rd.ReadRawReply(); err != nil {
						ends[i] = err
						return
					}
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	err := s.Shutdown(ctx)
	took := time.Since(start)
	wg.Wait()
	t.Logf("Shutdown under load took %v", took)
	require.NoError(t, err, "Shutdown was cut short after %v", took)
	assert.Less(t, took, 2*time.Second)
	for i, err := range ends {
		assert.ErrorIs(t, err, io.EOF, "client %d: the proxy closes cleanly (no reset)", i)
	}
}
