package server

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// BenchmarkLoopGetSet sends workload A's shape through an event loop:
// conns connections, each with one request in flight, nine gets of a
// 100-byte value to one set. It measures the whole path, system calls
// included; run it under callgrind with --toggle-collect on (*loop).run
// for the loop's instructions per request.
func BenchmarkLoopGetSet(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("event loops are Linux only")
	}
	for _, conns := range []int{1, 16} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			benchLoopGetSet(b, conns)
		})
	}
}

func benchLoopGetSet(b *testing.B, conns int) {
	_, addr := start(b, Config{EventLoops: 1})
	value := strings.Repeat("v", 100)
	clients := make([]net.Conn, conns)
	for i := range clients {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		clients[i] = nc
	}
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N / conns
	errs := make(chan error, conns)
	for i, nc := range clients {
		n := per
		if i == 0 {
			n += b.N - per*conns
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("key:%d", i)
			set := []byte(fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", key, len(value), value))
			get := []byte("get " + key + "\r\n")
			br := bufio.NewReader(nc)
			if _, err := nc.Write(set); err != nil {
				errs <- err
				return
			}
			if _, err := br.ReadSlice('\n'); err != nil {
				errs <- err
				return
			}
			for j := range n {
				req, end := get, []byte("END\r\n")
				if j%10 == 9 {
					req, end = set, []byte("STORED\r\n")
				}
				if _, err := nc.Write(req); err != nil {
					errs <- err
					return
				}
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						errs <- err
						return
					}
					if bytes.Equal(line, end) {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}
