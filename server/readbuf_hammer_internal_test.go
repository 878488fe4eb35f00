package server

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corvidcache/corvid/protocol"
	"github.com/corvidcache/corvid/storage"
)

// TestLargeReadBuffersUnderAbuse hammers the paths that hold a read buffer
// grown past keepBufSize (mapped outside the heap in non-race builds, where
// a use after it is given back faults): values and get lines larger than
// 64 KiB, half sent, answered into sockets that are not read, closed at
// awkward moments, with the command log, hot keys, detail stats and a
// watcher taking keys, in goroutine mode and with event loops, and a
// server that stops while the clients are at it.
func TestLargeReadBuffersUnderAbuse(t *testing.T) {
	for _, loops := range []int{-1, 2} {
		t.Run(fmt.Sprintf("loops=%d", loops), func(t *testing.T) {
			cfg := Config{
				EventLoops:     max(loops, 0),
				KlogFile:       filepath.Join(t.TempDir(), "klog"),
				HotKeySample:   1,
				HotKeyHalfLife: time.Minute,
				DetailEnabled:  true,
				ShutdownGrace:  time.Second,
				Storage:        storage.Config{MemoryLimit: 64 << 20, ItemSizeMax: 4 << 20},
			}
			s, err := New(cfgWithAddr(cfg))
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- s.Serve(t.Context()) }()
			addr := s.Addrs()[0].String()

			w, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			io.WriteString(w, "watch fetchers mutations\r\n")
			go io.Copy(io.Discard, w)

			big := strings.Repeat("v", 300<<10)
			seed, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			seed.SetDeadline(time.Now().Add(30 * time.Second))
			sr := bufio.NewReader(seed)
			for i := range 4 {
				fmt.Fprintf(seed, "set big%d 0 0 %d\r\n%s\r\n", i, len(big), big)
				if l, _ := sr.ReadString('\n'); l != "STORED\r\n" {
					t.Fatalf("set: %q", l)
				}
			}
			seed.Close()

			var wg sync.WaitGroup
			stop := make(chan struct{})
			const workers = 6
			for id := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(id), 7))
					for i := 0; i < 60; i++ {
						select {
						case <-stop:
							return
						default:
						}
						abuse(addr, rng, big)
					}
				}()
			}
			// Stop the server while the clients are at it.
			time.AfterFunc(1500*time.Millisecond, func() { s.Close() })
			if err := <-served; err != nil {
				t.Errorf("Serve: %v", err)
			}
			close(stop)
			wg.Wait()
		})
	}
}

func cfgWithAddr(cfg Config) Config {
	cfg.TCPAddrs = []string{"127.0.0.1:0"}
	return cfg
}

// abuse runs one hostile exchange with the server at addr.
func abuse(addr string, rng *rand.Rand, big string) {
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(3 * time.Second))
	key := func() string { return fmt.Sprintf("big%d", rng.IntN(4)) }
	switch rng.IntN(8) {
	case 0: // a large value half sent
		n := 1<<20 + rng.IntN(2<<20)
		fmt.Fprintf(nc, "set h%d 0 0 %d\r\n", rng.IntN(100), n)
		nc.Write([]byte(big[:min(len(big), rng.IntN(n))]))
		nc.Write([]byte(big))
	case 1: // a large value sent whole, then a get not read
		fmt.Fprintf(nc, "set %s 0 0 %d\r\n%s\r\nget %s %s\r\n", key(), len(big), big, key(), key())
	case 2: // a long get line of large values, not read
		var b strings.Builder
		b.WriteString("get")
		for b.Len() < 100<<10+rng.IntN(300<<10) {
			b.WriteString(" " + key())
		}
		b.WriteString("\r\n")
		io.WriteString(nc, b.String())
		buf := make([]byte, rng.IntN(1<<20)+1)
		io.ReadAtLeast(nc, buf, len(buf)/2)
	case 3: // a long get line of misses, half sent then sent
		line := "get" + strings.Repeat(" miss", 40<<10) + "\r\n"
		cut := rng.IntN(len(line))
		io.WriteString(nc, line[:cut])
		io.WriteString(nc, line[cut:])
		io.WriteString(nc, line)
		buf := make([]byte, 8)
		nc.Read(buf)
	case 4: // binary: a large set, a getk of a large value, not read
		var h [protocol.BinaryHeaderLen]byte
		k := key()
		h[0], h[1] = protocol.BinaryRequestMagic, byte(protocol.OpSet)
		binary.BigEndian.PutUint16(h[2:], uint16(len(k)))
		h[4] = 8
		binary.BigEndian.PutUint32(h[8:], uint32(8+len(k)+len(big)))
		nc.Write(h[:])
		nc.Write(make([]byte, 8))
		io.WriteString(nc, k)
		nc.Write([]byte(big[:rng.IntN(len(big))]))
		if rng.IntN(2) == 0 {
			nc.Write([]byte(big))
			var g [protocol.BinaryHeaderLen]byte
			g[0], g[1] = protocol.BinaryRequestMagic, byte(protocol.OpGetK)
			binary.BigEndian.PutUint16(g[2:], uint16(len(k)))
			binary.BigEndian.PutUint32(g[8:], uint32(len(k)))
			for range 20 {
				nc.Write(g[:])
				io.WriteString(nc, k)
			}
		}
	case 5: // meta: ms of a large value, mg of it, not read
		fmt.Fprintf(nc, "ms %s %d T0\r\n%s\r\n", key(), len(big), big)
		for range 10 {
			fmt.Fprintf(nc, "mg %s v k s\r\n", key())
		}
	case 6: // a line longer than any request, no newline
		nc.Write([]byte(strings.Repeat("x", 200<<10)))
		buf := make([]byte, 64)
		nc.Read(buf)
	case 7: // a good client
		r := bufio.NewReader(nc)
		fmt.Fprintf(nc, "get %s\r\n", key())
		for {
			l, err := r.ReadString('\n')
			if err != nil || l == "END\r\n" {
				return
			}
		}
	}
	if rng.IntN(2) == 0 {
		// Reset rather than close: the server's next write fails.
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
	}
}
