// Command relay is the least a proxy can do: it pairs each client
// connection with a connection of its own to -backend and copies bytes
// both ways, without parsing them. It measures what a process adds to a
// request's latency just by passing it on, for the two ways a Go proxy
// can be built (see bench/proxylat.sh):
//
//	-mode goroutine  a goroutine per direction per connection, each
//	                 waiting in the Go runtime's network poller (what
//	                 corvid proxy does today)
//	-mode epoll      -loops event loops, each a goroutine waiting in
//	                 epoll_wait itself for the sockets it owns, as
//	                 nutcracker's one thread and corvid server's loops do
//
// Usage:
//
//	relay -listen 127.0.0.1:22122 -backend 127.0.0.1:11211 -mode epoll -loops 1
package main

import (
	"flag"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:22122", "address to listen on")
	backend := flag.String("backend", "127.0.0.1:11211", "address to relay to")
	mode := flag.String("mode", "goroutine", "goroutine or epoll")
	loops := flag.Int("loops", 1, "event loops (-mode epoll)")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	var pair func(c, b net.Conn) error
	switch *mode {
	case "goroutine":
		pair = copyBoth
	case "epoll":
		if *loops < 1 {
			log.Fatal("-loops must be at least 1")
		}
		ls := make([]*loop, *loops)
		for i := range ls {
			if ls[i], err = newLoop(); err != nil {
				log.Fatal(err)
			}
			go ls[i].run()
		}
		next := 0
		pair = func(c, b net.Conn) error {
			l := ls[next%len(ls)]
			next++
			return l.add(c, b)
		}
	default:
		log.Fatalf("unknown -mode %q", *mode)
	}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		<-sig
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", *backend)
		if err != nil {
			log.Print(err)
			c.Close()
			continue
		}
		if err := pair(c, b); err != nil {
			log.Print(err)
			c.Close()
			b.Close()
		}
	}
}

// copyBoth copies c to b and b to c, each on a goroutine of its own.
func copyBoth(c, b net.Conn) error {
	cp := func(dst, src net.Conn) {
		io.Copy(dst, src)
		dst.Close()
		src.Close()
	}
	go cp(b, c)
	go cp(c, b)
	return nil
}
