package proxy

import (
	"github.com/walnutproxy/walnut/protocol/resp"
)

// blocking serves request i of the batch, a blocking command.
func (c *session) blocking(i int, ci *resp.CommandInfo) (quit bool, err error) {
	_ = i
	msg := "ERR " + upperName(ci) + " is not supported through a sharding proxy: a blocking command needs a server connection of its own"
	return false, c.pinReply(resp.AppendError(c.out[:0], msg))
}

// streamBlocks reports whether XREAD or XREADGROUP args has BLOCK.
func streamBlocks(args [][]byte) bool {
	_, block := streamKeys(args)
	return block
}

// streamKeys returns where the keys of XREAD or XREADGROUP args begin
// and end (after STREAMS: the first half of what follows), 0, 0 if the
// command is malformed, and whether it has the BLOCK option.
func streamKeys(args [][]byte) (keys [2]int, block bool) {
	i := 1
	if equalFold(args[0], "xreadgroup") {
		if len(args) < 4 || !equalFold(args[1], "group") {
			return keys, false
		}
		i = 4
	}
	for i < len(args) {
		a := args[i]
		switch {
		case equalFold(a, "streams"):
			rest := len(args) - i - 1
			if rest == 0 || rest%2 != 0 {
				return keys, block
			}
			return [2]int{i + 1, i + 1 + rest/2}, block
		case equalFold(a, "block"):
			block = true
			i += 2
		case equalFold(a, "count"):
			i += 2
		case equalFold(a, "noack"):
			i++
		default:
			return keys, block
		}
	}
	return keys, block
}

// routeStreamRead routes XREAD or XREADGROUP without BLOCK by the keys
// after STREAMS, which must share a server; a malformed one goes to the
// server of placeholderKey, which answers the error.
func (c *session) routeStreamRead(cmd *resp.Command, ci *resp.CommandInfo) {
	args := cmd.Args
	r := c.ring()
	k, _ := streamKeys(args)
	if k[0] == 0 {
		c.forward(cmd, r.Pick(placeholderKey))
		return
	}
	srv := r.Pick(args[k[0]])
	for _, key := range args[k[0]+1 : k[1]] {
		if r.Pick(key) != srv {
			c.addError(crossSlot(ci))
			return
		}
	}
	c.forward(cmd, srv)
}
