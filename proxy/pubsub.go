package proxy

import (
	"github.com/walnutproxy/walnut/protocol/resp"
)

// pubsubState is a subscribed client's state (see pinState).
type pubsubState struct{}

// pubsub serves request i of the batch, a Pub/Sub command (ci), or any
// request of a client pinned for Pub/Sub; msg, if not empty, is the error
// reply redisCheck gave it. It writes its replies itself (pinReply,
// pinWrite) and reports a QUIT, and an error that ends the session.
//
// Subscriptions are not served yet: the command is refused, as before.
func (c *session) pubsub(i int, ci *resp.CommandInfo, msg string) (quit bool, err error) {
	_ = i
	if msg == "" {
		msg = "ERR " + upperName(ci) + " is not supported through a sharding proxy: " + refuseSubscribe
	}
	return false, c.pinReply(resp.AppendError(c.out[:0], msg))
}

// pubsubEnd ends a subscribed client's subscriptions: the session ends.
func (c *session) pubsubEnd() {
	if c.pin != nil {
		c.pin.ps = pubsubState{}
	}
}
