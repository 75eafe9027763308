package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	err := run([]string{"-hash-tag", "{}",
		"-server", "127.0.0.1:6381:1", "-server", "127.0.0.1:6379:1", "-server", "127.0.0.1:6380:1",
		"foo", "user:{1000}:name"}, &out)
	require.NoError(t, err)
	// Where nutcracker puts these keys in this pool (ketama, fnv1a_64).
	assert.Equal(t, "foo\t127.0.0.1:6381\t127.0.0.1:6381\nuser:{1000}:name\t127.0.0.1:6380\t127.0.0.1:6380\n", out.String())

	for _, bad := range [][]string{
		{"foo"},
		{"-server", "127.0.0.1:6379", "foo"},
		{"-hash", "sha1", "-server", "127.0.0.1:6379:1", "foo"},
		{"-distribution", "rendezvous", "-server", "127.0.0.1:6379:1", "foo"},
		{"-server", "127.0.0.1:6379:1", "-server", "127.0.0.1:6379:2", "foo"}, // the same server twice
	} {
		assert.Error(t, run(bad, &out), "%q", bad)
	}
}
