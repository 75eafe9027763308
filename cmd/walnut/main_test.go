package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRun(t *testing.T) {
	var out, errOut bytes.Buffer
	assert.Equal(t, 0, run([]string{"-V"}, &out, &errOut))
	assert.Equal(t, "This is walnut-0.0.0-dev\n", out.String())
	out.Reset()
	assert.Equal(t, 1, run([]string{"-c", "nutcracker.yml"}, &out, &errOut))
	assert.Contains(t, errOut.String(), "not implemented yet")
	assert.Empty(t, out.String())
}
