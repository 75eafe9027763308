package proxy

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPinKindOf(t *testing.T) {
	tests := []struct {
		give []string
		want pinKind
	}{
		{[]string{"MULTI"}, pinTransaction},
		{[]string{"exec"}, pinTransaction},
		{[]string{"Discard"}, pinTransaction},
		{[]string{"WATCH", "k"}, pinTransaction},
		{[]string{"unwatch"}, pinTransaction},
		{[]string{"BLPOP", "k", "0"}, pinBlocking},
		{[]string{"brpoplpush", "a", "b", "0"}, pinBlocking},
		{[]string{"BZPOPMAX", "k", "0"}, pinBlocking},
		{[]string{"XREAD", "BLOCK", "0", "STREAMS", "s", "$"}, pinBlocking},
		{[]string{"XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "s", "$"}, pinBlocking},
		{[]string{"XREAD", "STREAMS", "s", "0"}, pinNone},
		{[]string{"XREADGROUP", "GROUP", "g", "c", "BLOCK", "5", "STREAMS", "s", ">"}, pinBlocking},
		{[]string{"XREADGROUP", "GROUP", "g", "c", "NOACK", "STREAMS", "s", ">"}, pinNone},
		{[]string{"SUBSCRIBE", "ch"}, pinPubsub},
		{[]string{"punsubscribe"}, pinPubsub},
		{[]string{"PUBLISH", "ch", "m"}, pinNone},
		{[]string{"WAIT", "0", "0"}, pinNone},
		{[]string{"GET", "k"}, pinNone},
		{[]string{"MGET", "k"}, pinNone},
		{[]string{"bitop", "and", "d", "a"}, pinNone},
		{[]string{"SUBSCRIBEX"}, pinNone},
		{[]string{"9multi"}, pinNone},
		{[]string{""}, pinNone},
	}
	for _, tt := range tests {
		args := make([][]byte, len(tt.give))
		for i, a := range tt.give {
			args[i] = []byte(a)
		}
		assert.Equal(t, tt.want, pinKindOf(args), "%v", tt.give)
	}
}

func TestStreamKeys(t *testing.T) {
	tests := []struct {
		give  []string
		keys  [2]int
		block bool
	}{
		{[]string{"XREAD", "STREAMS", "a", "b", "0", "0"}, [2]int{2, 4}, false},
		{[]string{"XREAD", "COUNT", "2", "BLOCK", "0", "STREAMS", "a", "$"}, [2]int{6, 7}, true},
		{[]string{"XREAD", "STREAMS", "a"}, [2]int{}, false},
		{[]string{"XREAD", "STREAMS"}, [2]int{}, false},
		{[]string{"XREAD", "NOPE", "STREAMS", "a", "0"}, [2]int{}, false},
		{[]string{"XREADGROUP", "GROUP", "g", "c", "BLOCK", "1", "NOACK", "STREAMS", "a", ">"}, [2]int{8, 9}, true},
		{[]string{"XREADGROUP", "g", "c", "STREAMS", "a", ">"}, [2]int{}, false},
	}
	for _, tt := range tests {
		args := make([][]byte, len(tt.give))
		for i, a := range tt.give {
			args[i] = []byte(a)
		}
		keys, block := streamKeys(args)
		assert.Equal(t, tt.keys, keys, "%v", tt.give)
		assert.Equal(t, tt.block, block, "%v", tt.give)
	}
}
