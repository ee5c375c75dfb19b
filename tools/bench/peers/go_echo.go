// go_echo: the Go peer of the echo benchmark (issue 6): one goroutine per connection reading into
// a 16 KiB buffer and writing back what arrived; GOMAXPROCS=1 (set here too, whatever the
// environment says). Usage: go_echo PORT
package main

import (
	"fmt"
	"net"
	"os"
	"runtime"
)

func echo(conn net.Conn) {
	defer conn.Close()
	buffer := make([]byte, 16384)
	for {
		n, err := conn.Read(buffer)
		if n > 0 {
			if _, werr := conn.Write(buffer[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go_echo PORT")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(1)
	listener, err := net.Listen("tcp", "127.0.0.1:"+os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "go_echo:", err)
		os.Exit(1)
	}
	fmt.Println("go_echo listening on", os.Args[1])
	for {
		conn, err := listener.Accept()
		if err != nil {
			continue
		}
		go echo(conn)
	}
}
