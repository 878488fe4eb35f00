package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/protocol"
	"github.com/corvidcache/corvid/storage"
)

// usedChunks returns the chunks in use over every class and the items.
func usedChunks(s *Server) (int, int) {
	var st storage.Stats
	s.cache.ReadStats(&st)
	n := 0
	for _, cs := range st.Classes {
		n += cs.UsedChunks
	}
	return n, int(st.CurrItems)
}

// TestChainedAbortsLeaveNothing runs requests on chained values that end
// early or fail, each on its own connection, and checks that the chunks
// in use, the items and the pins come back to what they were.
func TestChainedAbortsLeaveNothing(t *testing.T) {
	const size = 3 << 20
	s, addr := start(t, Config{
		Storage: storage.Config{MemoryLimit: 64 << 20, ItemSizeMax: 8 << 20},
	})
	// More than a socket's send buffer takes (4 MiB at most on Linux).
	value := bytes.Repeat([]byte("v"), 7<<20)
	if _, err := s.cache.Store(storage.ModeSet, []byte("k"), 0, 0, value, 0); err != nil {
		t.Fatal(err)
	}
	head := func(cmd string, n int) string { return fmt.Sprintf("%s 0 0 %d\r\n", cmd, n) }
	cases := []struct {
		name  string
		send  string
		reply string // the first line expected, "" to close without reading
	}{
		{"set cut", head("set x", size) + strings.Repeat("a", size/2), ""},
		{"set bad chunk", head("set x", size) + strings.Repeat("a", size) + "xx", "CLIENT_ERROR bad data chunk"},
		{"add exists", head("add k", size) + strings.Repeat("a", size) + "\r\n", "NOT_STORED"},
		{"replace missing", head("replace x", size) + strings.Repeat("a", size) + "\r\n", "NOT_STORED"},
		{"cas missing", fmt.Sprintf("cas x 0 0 %d 1\r\n", size) + strings.Repeat("a", size) + "\r\n", "NOT_FOUND"},
		{"cas exists", fmt.Sprintf("cas k 0 0 %d 12345\r\n", size) + strings.Repeat("a", size) + "\r\n", "EXISTS"},
		{"too large", head("set x", 9<<20) + strings.Repeat("a", 9<<20) + "\r\n", "SERVER_ERROR object too large for cache"},
		{"append cut", head("append k", size) + strings.Repeat("a", size/2), ""},
		{"append missing", head("append x", size) + strings.Repeat("a", size) + "\r\n", "NOT_STORED"},
		{"prepend bad chunk", head("prepend k", size) + strings.Repeat("a", size) + "xx", "CLIENT_ERROR bad data chunk"},
		{"ms cut", fmt.Sprintf("ms x %d\r\n", size) + strings.Repeat("a", size/2), ""},
		{"ms bad chunk", fmt.Sprintf("ms x %d q\r\n", size) + strings.Repeat("a", size) + "xx", "CLIENT_ERROR bad data chunk"},
		{"ms add exists", fmt.Sprintf("ms k %d ME\r\n", size) + strings.Repeat("a", size) + "\r\n", "NS"},
		{"ms cas exists", fmt.Sprintf("ms k %d C12345\r\n", size) + strings.Repeat("a", size) + "\r\n", "EX"},
		{"ms append cut", fmt.Sprintf("ms k %d MA\r\n", size) + strings.Repeat("a", size/2), ""},
		{"binary set cut", string(binaryStore(protocol.OpSet, "x", size, 1)) + strings.Repeat("a", size/2), ""},
		{"binary prepend cut", string(binaryStore(protocol.OpPrepend, "k", size, 1)) + strings.Repeat("a", size/2), ""},
		{"get cut", "get k\r\n", "VALUE k 0 7340032"},
		{"mg cut", "mg k v\r\n", "VA 7340032"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			used0, items0 := usedChunks(s)
			nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			// A reply the socket cannot take at once stays pinned.
			nc.(*net.TCPConn).SetReadBuffer(16 << 10)
			nc.SetDeadline(time.Now().Add(30 * time.Second))
			sent := make(chan struct{})
			go func() {
				defer close(sent)
				io.WriteString(nc, tc.send) // may be cut short by the close
			}()
			defer func() { nc.Close(); <-sent }()
			if tc.reply != "" {
				line, err := bufio.NewReader(nc).ReadString('\n')
				if err != nil || strings.TrimSpace(line) != tc.reply {
					t.Fatalf("reply %q, %v; want %q", line, err, tc.reply)
				}
			} else {
				// Wait for the server to have taken part of it.
				deadline := time.Now().Add(10 * time.Second)
				for {
					u, _ := usedChunks(s)
					if u != used0 || s.cache.PinnedItems() > 0 || time.Now().After(deadline) {
						break
					}
					time.Sleep(time.Millisecond)
				}
			}
			nc.Close()
			deadline := time.Now().Add(20 * time.Second)
			for {
				used, items := usedChunks(s)
				pinned := s.cache.PinnedItems()
				if used == used0 && items == items0 && pinned == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("used chunks %d (was %d), items %d (was %d), pinned %d", used, used0, items, items0, pinned)
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
}
