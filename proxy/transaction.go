package proxy

import (
	"github.com/walnutproxy/walnut/protocol/resp"
)

// txState is a client's transaction in progress (see pinState).
type txState struct{}

// transaction serves request i of the batch inside or at the start of a
// transaction.
func (c *session) transaction(i int, ci *resp.CommandInfo, msg string) (quit bool, err error) {
	_ = i
	if msg == "" {
		msg = "ERR " + upperName(ci) + " is not supported through a sharding proxy: a transaction needs a server connection of its own"
	}
	return false, c.pinReply(resp.AppendError(c.out[:0], msg))
}

// txEnd ends the client's transaction: the session ends.
func (c *session) txEnd() {}
