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
		{give: "EOF", err: io.EOF, want: ErrEOF, wantText: "pool: connection closed by server"},
		{give: "unexpected EOF", err: fmt.Errorf("x: %w", io.ErrUnexpectedEOF), want: ErrEOF, wantText: "pool: connection closed by server"},
		{give: "refused", err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, want: ErrConnRefused, wantText: "pool: connection refused"},
		{give: "reset", err: op(syscall.ECONNRESET), want: ErrConnReset, wantText: "pool: connection reset by peer"},
		{give: "ETIMEDOUT", err: op(syscall.ETIMEDOUT), want: ErrTimedOut, wantText: "pool: timed out"},
		{give: "deadline", err: os.ErrDeadlineExceeded, want: ErrTimedOut, wantText: "pool: timed out"},
		{give: "context deadline", err: context.DeadlineExceeded, want: ErrTimedOut, wantText: "pool: timed out"},
		{give: "EHOSTDOWN", err: op(syscall.EHOSTDOWN), want: ErrHostDown, wantText: "pool: host is down"},
		{give: "DNS", err: &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "x"}}, want: ErrHostDown, wantText: "pool: host is down"},
		{give: "EPIPE", err: op(syscall.EPIPE), want: syscall.EPIPE, wantText: "pool: broken pipe"},
		{give: "EHOSTUNREACH", err: op(syscall.EHOSTUNREACH), want: syscall.EHOSTUNREACH, wantText: "pool: no route to host"},
		{give: "other", err: errors.New("tls: bad certificate"), want: ErrUnknown, wantText: "pool: connection failed"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got := mapErr(tt.err)
			assert.ErrorIs(t, got, tt.want)
			assert.Equal(t, tt.wantText, got.Error())
		})
	}
}
