package resp_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/resp"
)

// Parse a pipelined buffer: two commands, input redis-server skips, and the
// start of a third command.
func ExampleParseCommand() {
	buf := []byte("*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n\r\nSET k 'a value'\r\n*1\r\n$4\r\nPI")
	var cmd resp.Command
	for {
		n, err := resp.ParseCommand(buf, protocol.Limits{}, &cmd)
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		if n == 0 {
			fmt.Printf("incomplete: %q\n", buf)
			return
		}
		if len(cmd.Args) > 0 {
			fmt.Printf("%q inline=%v\n", cmd.Args, cmd.Inline)
		}
		buf = buf[n:]
	}
	// Output:
	// ["GET" "key"] inline=false
	// ["SET" "k" "a value"] inline=true
	// incomplete: "*1\r\n$4\r\nPI"
}

// A malformed command gives the reply redis-server would send.
func ExampleParseCommand_malformed() {
	var cmd resp.Command
	_, err := resp.ParseCommand([]byte("*1\r\n$x\r\n"), protocol.Limits{}, &cmd)
	var pe *protocol.Error
	if errors.As(err, &pe) {
		fmt.Printf("%q\n", resp.AppendError(nil, pe.Reply))
	}
	// Output:
	// "-ERR Protocol error: invalid bulk length\r\n"
}

// Frame replies in a buffer without materialising them, as a proxy does
// before forwarding their bytes.
func ExampleFrameReply() {
	buf := []byte("*2\r\n$5\r\nhello\r\n*1\r\n:42\r\n+OK\r\n$5\r\nwor")
	for {
		n, err := resp.FrameReply(buf, protocol.Limits{})
		if err != nil || n == 0 {
			fmt.Printf("rest: %q, %v\n", buf, err)
			return
		}
		fmt.Printf("reply: %q\n", buf[:n])
		buf = buf[n:]
	}
	// Output:
	// reply: "*2\r\n$5\r\nhello\r\n*1\r\n:42\r\n"
	// reply: "+OK\r\n"
	// rest: "$5\r\nwor", <nil>
}

func ExampleParseReply() {
	var v resp.Value
	_, err := resp.ParseReply([]byte("*3\r\n$1\r\na\r\n$-1\r\n-ERR no\r\n"), protocol.Limits{}, &v)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range v.Elems {
		fmt.Printf("%c %q nil=%v error=%v\n", e.Type, e.Str, e.IsNil(), e.IsError())
	}
	// Output:
	// $ "a" nil=false error=false
	// $ "" nil=true error=false
	// - "ERR no" nil=false error=true
}

// The client side of a proxy: read every command already buffered, answer
// each, then flush once.
func ExampleReader_ReadCommands() {
	in := strings.NewReader("PING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n*1\r\n$4\r\nQUIT\r\n")
	var out bytes.Buffer
	r := resp.NewReader(in, protocol.Limits{})
	w := resp.NewWriter(&out)
	var cmds []resp.Command
	for {
		var err error
		cmds, err = r.ReadCommands(cmds)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, c := range cmds {
			switch strings.ToUpper(string(c.Args[0])) {
			case "PING":
				w.WriteSimple("PONG")
			case "ECHO":
				w.WriteBulk(c.Args[1])
			default:
				w.WriteError("ERR unknown command")
			}
		}
		if err := w.Flush(); err != nil {
			fmt.Println(err)
			return
		}
	}
	fmt.Printf("%q\n", out.String())
	// Output:
	// "+PONG\r\n$2\r\nhi\r\n-ERR unknown command\r\n"
}
