package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMapErr(t *testing.T) {
	op := func(err error) error {
		return &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", err)}
	}
	tests := []struct {
		give     string
		err      error
		want     error
		wantText string
	}{
		{give: "EOF", err: io.EOF, want: ErrEOF, wantText: "unknown"},
		{give: "unexpected EOF", err: fmt.Errorf("x: %w", io.ErrUnexpectedEOF), want: ErrEOF, wantText: "unknown"},
		{give: "refused", err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, want: ErrConnRefused, wantText: "Connection refused"},
		{give: "reset", err: op(syscall.ECONNRESET), want: ErrConnReset, wantText: "Connection reset by peer"},
		{give: "ETIMEDOUT", err: op(syscall.ETIMEDOUT), want: ErrTimedOut, wantText: "Connection timed out"},
		{give: "deadline", err: os.ErrDeadlineExceeded, want: ErrTimedOut, wantText: "Connection timed out"},
		{give: "context deadline", err: context.DeadlineExceeded, want: ErrTimedOut, wantText: "Connection timed out"},
		{give: "EHOSTDOWN", err: op(syscall.EHOSTDOWN), want: ErrHostDown, wantText: "Host is down"},
		{give: "DNS", err: &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "x"}}, want: ErrHostDown, wantText: "Host is down"},
		{give: "EPIPE", err: op(syscall.EPIPE), want: syscall.EPIPE, wantText: "Broken pipe"},
		{give: "EHOSTUNREACH", err: op(syscall.EHOSTUNREACH), want: syscall.EHOSTUNREACH, wantText: "No route to host"},
		{give: "other", err: errors.New("tls: bad certificate"), want: ErrUnknown, wantText: "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got := mapErr(tt.err)
			assert.ErrorIs(t, got, tt.want)
			assert.Equal(t, tt.wantText, got.Error())
		})
	}
}
