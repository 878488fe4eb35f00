package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
)

// TestGetExtraReplyDisconnects: a server that answers every get twice
// puts its replies out of step with the requests; a VALUE for a key the
// request awaiting a reply did not ask must break the connection and
// fail what it holds, not reach that request's client: a get must never
// get another key's value.
func TestGetExtraReplyDisconnects(t *testing.T) {
	srv := testutil.FakeServer(t, func(nc net.Conn) {
		r := bufio.NewReader(nc)
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			reply := valuesOfKeys(bytes.Fields(line)[1:])
			if _, err := nc.Write(append(reply, reply...)); err != nil {
				return
			}
		}
	})
	_, addr := proxyFor(t, []string{srv})
	c := testutil.Dial(t, addr)
	defer c.Close()
	keys := []string{"k1", "k2", "k3 k4", "k5"}
	var req []byte
	for _, k := range keys {
		req = fmt.Appendf(req, "get %s\r\n", k)
	}
	c.Send(req)
	for _, k := range keys {
		r := c.ReadReply(testutil.AnyReply)
		if k != keys[0] && bytes.HasPrefix(r, []byte("SERVER_ERROR")) {
			continue // the first is answered in step
		}
		if want := valuesOfKeys(bytes.Fields([]byte(k))); !bytes.Equal(r, want) {
			t.Errorf("get %s: reply %q", k, r)
		}
	}
}

// valuesOfKeys is the reply to a get of keys when each holds its own name.
func valuesOfKeys(keys [][]byte) []byte {
	var reply []byte
	for _, k := range keys {
		reply = fmt.Appendf(reply, "VALUE %s 0 %d\r\n%s\r\n", k, len(k), k)
	}
	return append(reply, "END\r\n"...)
}

// TestMetaExtraReplyDisconnects: TestGetExtraReplyDisconnects for meta
// requests: a reply whose opaque or key (flags O and k) is another
// request's breaks the connection instead of reaching the client of the
// request awaiting one.
func TestMetaExtraReplyDisconnects(t *testing.T) {
	srv := testutil.FakeServer(t, func(nc net.Conn) {
		r := bufio.NewReader(nc)
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			f := bytes.Fields(line)
			if string(f[0]) == "mn" {
				nc.Write([]byte("MN\r\n"))
				continue
			}
			reply := fmt.Appendf(nil, "VA %d k%s %s\r\n%s\r\n", len(f[1]), f[1], f[4], f[1])
			if _, err := nc.Write(append(reply, reply...)); err != nil {
				return
			}
		}
	})
	_, addr := proxyFor(t, []string{srv})
	c := testutil.Dial(t, addr)
	defer c.Close()
	var req []byte
	for i := range 4 {
		req = fmt.Appendf(req, "mg k%d v k O%d\r\n", i, i)
	}
	c.Send(req)
	for i := range 4 {
		r := c.ReadReply(testutil.AnyReply)
		if i > 0 && bytes.HasPrefix(r, []byte("SERVER_ERROR")) {
			continue // the first is answered in step
		}
		if want := fmt.Sprintf("VA 2 kk%d O%d\r\nk%d\r\n", i, i, i); string(r) != want {
			t.Errorf("mg k%d: reply %q", i, r)
		}
	}
}

func TestMetaOwn(t *testing.T) {
	for _, tc := range []struct {
		line, reply string
		want        bool
	}{
		{"mg kettle v k O1\r\n", "VA 1 kkettle O1\r\nx\r\n", true},
		{"mg kettle v k O1\r\n", "VA 1 kother O1\r\nx\r\n", false},
		{"mg kettle v k O1\r\n", "VA 1 kkettle O2\r\nx\r\n", false},
		{"mg kettle v\r\n", "VA 1 O2\r\nx\r\n", false},
		{"mg kettle v\r\n", "EN\r\n", true},
		{"me kettle\r\n", "ME kettle exp=-1 la=1 cas=2 fetch=no cls=1 size=63\r\n", true},
		{"mg a q k O7\r\n", "SERVER_ERROR busy\r\nHD ka O7\r\nMN\r\n", true},
		{"mg a q k O7\r\n", "HD kb O7\r\nMN\r\n", false},
		{"ms a 1 k O7\r\n", "HD ka O7\r\n", true},
		// memcached writes an item's key in base64 when a request with b
		// stored it, and as it is otherwise, whatever the request's form.
		{"mg Zm9v b k v\r\n", "VA 1 kfoo\r\nx\r\n", true},
		{"mg foo k v\r\n", "VA 1 kZm9v b\r\nx\r\n", true},
		{"mg YSBi b k N0 O3\r\n", "HD ka b W O3\r\n", true}, // "a b", as it is
		{"mg YSBi b k N0 O3\r\n", "HD ka b W O4\r\n", false},
		{"mg YSBPYg== b k O3\r\n", "HD ka Ob O3\r\n", true}, // "a Ob"
		{"mg Zm9v b k v\r\n", "VA 1 kfoa\r\nx\r\n", false},
		{"mg foo k v\r\n", "VA 1 kZm9h b\r\nx\r\n", false},
		{"mg YSBi b k\r\n", "HD kb b\r\n", false},
		{"mg a=b= b k\r\n", "HD kaA== b\r\n", true}, // "h", as memcached decodes it
		{"mg a=b= b k\r\n", "HD kh\r\n", true},
	} {
		if got := metaOwn([]byte(tc.reply), []byte(tc.line)); got != tc.want {
			t.Errorf("metaOwn(%q, %q) = %v, want %v", tc.reply, tc.line, got, tc.want)
		}
	}
	// Every meta reply is checked: the check must not allocate.
	reply, line := []byte("VA 1 kkettle O1 c5 t-1\r\nx\r\n"), []byte("mg kettle v k O1 c t\r\n")
	reply64, line64 := []byte("VA 1 kkettle O1\r\nx\r\n"), []byte("mg a2V0dGxl b v k O1\r\n")
	get, value := []byte("get a kettle b\r\n"), []byte("VALUE kettle 0 1\r\nx\r\nEND\r\n")
	if n := testing.AllocsPerRun(100, func() {
		if !metaOwn(reply, line) || !metaOwn(reply64, line64) || !valuesAsked(value, get) {
			t.Fatal("a reply of its own request refused")
		}
	}); n != 0 {
		t.Errorf("checking a reply allocates %v times", n)
	}
}
