package pool_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/walnutproxy/walnut/pool"
)

// serveToy is a stand-in for a backend: it answers "PING" with "+PONG" and
// "ECHO x" with "+x", one line each, until its listener is closed and its
// clients hang up.
func serveToy(ln net.Listener, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			sc := bufio.NewScanner(c)
			for sc.Scan() {
				reply := "+PONG\r\n"
				if arg, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "ECHO "); ok {
					reply = "+" + arg + "\r\n"
				}
				if _, err := c.Write([]byte(reply)); err != nil {
					return
				}
			}
		}()
	}
}

func Example() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go serveToy(ln, &wg)
	defer wg.Wait()
	defer ln.Close()

	p, err := pool.New(pool.Server{Addr: ln.Addr().String(), Name: "toy"}, pool.Options{
		// The toy protocol's replies are single lines.
		Framer:  func(b []byte, _ *pool.Request) (int, error) { return bytes.IndexByte(b, '\n') + 1, nil },
		Timeout: 5 * time.Second,
	})
	if err != nil {
		panic(err)
	}
	defer p.Close()

	// Call waits for its reply.
	reply, err := p.Call(context.Background(), []byte("PING\r\n"))
	fmt.Printf("%q %v\n", reply, err)

	// Do does not: these three share the connection, and most likely one
	// write. Each reply is only valid during its Done call.
	replies := make([]string, 3)
	var done sync.WaitGroup
	for i, word := range []string{"one", "two", "three"} {
		done.Add(1)
		p.Do(&pool.Request{Data: []byte("ECHO " + word + "\r\n"), Done: func(reply []byte, err error) {
			replies[i] = string(reply) // a copy
			done.Done()
		}})
	}
	done.Wait()
	fmt.Printf("%q\n", replies)

	st := p.Stats()
	fmt.Println("requests:", st.Requests, "responses:", st.Responses, "connections:", st.ServerConnections)
	// Output:
	// "+PONG\r\n" <nil>
	// ["+one\r\n" "+two\r\n" "+three\r\n"]
	// requests: 4 responses: 4 connections: 1
}
