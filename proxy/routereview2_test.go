package proxy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/route"
	"github.com/corvidcache/corvid/server"
	"github.com/corvidcache/corvid/storage"
)

const binAdd = 0x02

// TestRouteBinaryAddExistsRanked: a binary add that one child refuses
// because it holds the key (memcached's binary "key exists", text's
// NOT_STORED) ranks as the text add's NOT_STORED, a miss, below the
// other child's success: AllSyncRoute answers it whichever reply comes
// first, and AllMajorityRoute answers it when most children hold the key.
func TestRouteBinaryAddExistsRanked(t *testing.T) {
	addrs := startCorvids(t, 3)
	sync := &route.Handle{Type: route.AllSyncRoute, Children: []*route.Handle{poolRoute("B"), poolRoute("A")}}
	maj := &route.Handle{Type: route.AllMajorityRoute, Children: []*route.Handle{
		poolRoute("C"), poolRoute("A"), poolRoute("B")}}
	for _, tc := range []struct {
		name string
		root *route.Handle
		has  []string // the servers that hold the key before the add
	}{
		{"AllSync", sync, addrs[:1]},
		{"AllMajority", maj, addrs[:2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, addr := startRouter(t, &route.Config{Pools: onePools(addrs...), Root: tc.root})
			c, bc := testutil.Dial(t, addr), testutil.Dial(t, addr) // text, binary
			for i := range 20 {
				key := fmt.Sprintf("%s%d", tc.name, i)
				for _, s := range tc.has {
					roundTrip(testutil.Dial(t, s), "set "+key+" 0 0 1\r\nx\r\n", testutil.LineReply)
				}
				text := roundTrip(c, "add "+key+" 0 0 1\r\ny\r\n", testutil.LineReply)
				if text != "NOT_STORED\r\n" {
					t.Fatalf("text add %s: %q, want NOT_STORED", key, text)
				}
				key += "b"
				for _, s := range tc.has {
					roundTrip(testutil.Dial(t, s), "set "+key+" 0 0 1\r\nx\r\n", testutil.LineReply)
				}
				r := binDo(t, bc, testutil.BinaryRequest{Opcode: binAdd, Key: []byte(key), Value: []byte("y"),
					Extras: make([]byte, 8)})
				if r.Status() != 2 {
					t.Fatalf("binary add %s: %v, want status 2 (key exists), as the text add's NOT_STORED", key, r)
				}
			}
		})
	}
}

// TestRouteDetachedRepliesOwnBudget: the replies a detached copy's
// composer holds (a shadow through an AllSyncRoute waiting for a child
// that never answers) count against the detached copies' budget, not
// against the replies held for clients (write_buf_bytes), which the
// primary's clients need: a slow shadow pool takes nothing from them.
func TestRouteDetachedRepliesOwnBudget(t *testing.T) {
	const (
		n    = 16
		size = 128 << 10
	)
	srv := startCorvids(t, 1)[0]
	pools := onePools(srv, srv, blockedServer(t))
	pools["C"].Timeout = time.Minute // the shadows' steps wait during the test
	root := poolRoute("A")
	root.Shadows = []route.Shadow{{KeyFractionRange: [2]float64{0, 1}, Target: &route.Handle{
		Type: route.AllSyncRoute, Children: []*route.Handle{poolRoute("B"), poolRoute("C")}}}}
	p, addr := startRouterWith(t, Config{WriteBufMemLimit: 4 << 20}, &route.Config{Pools: pools, Root: root})
	roundTrip(testutil.Dial(t, srv), fmt.Sprintf("set big 0 0 %d\r\n%s\r\n", size, strings.Repeat("v", size)),
		testutil.LineReply)
	c := testutil.Dial(t, addr)
	for i := range n {
		if got := roundTrip(c, "get big\r\n", testutil.ValuesReply); !strings.HasPrefix(got, "VALUE big") {
			t.Fatalf("get %d: %.40q", i, got)
		}
	}
	// The shadows' AllSync steps hold B's n replies while C says nothing.
	held := func() int64 { return p.async.bytes.Load() + p.Stats().WriteBufBytes }
	for deadline := time.Now().Add(10 * time.Second); held() < n*size; {
		if time.Now().After(deadline) {
			t.Fatalf("the shadows' steps hold %d bytes, want %d", held(), n*size)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The last reply's bytes are released once its write returns, which
	// may be just after the client has read it.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		b := p.Stats().WriteBufBytes
		if b == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("write_buf_bytes %d with no client reply held: the shadows took the clients' budget", b)
		}
	}
}

// TestRouteBinaryTooLargeFailsOver: a server's refusal of a value too
// large for it (text's "SERVER_ERROR object too large for cache",
// binary's status 3) is a server error, which FailoverRoute fails over
// for a binary set as for a text one.
func TestRouteBinaryTooLargeFailsOver(t *testing.T) {
	small := testutil.StartCorvid(t, server.Config{Storage: storage.Config{ItemSizeMax: 64 << 10}})
	big := startCorvids(t, 1)[0]
	root := &route.Handle{Type: route.FailoverRoute, Children: []*route.Handle{poolRoute("A"), poolRoute("B")}}
	_, addr := startRouter(t, &route.Config{Pools: onePools(small, big), Root: root})
	val := strings.Repeat("v", 100<<10)
	if got := setVia(t, testutil.Dial(t, addr), "t", val); got != "STORED\r\n" {
		t.Fatalf("text set: %q, want STORED by the second child", got)
	}
	if r := binDo(t, testutil.Dial(t, addr), binSetReq("b", val)); r.Status() != 0 {
		t.Fatalf("binary set: %v, want success from the second child, as the text set", r)
	}
	if !has(t, big, "b") {
		t.Errorf("the binary set did not reach the second child")
	}
}

// TestRouteBinaryGetKMissEchoesKey: NullRoute's miss (a key no prefix
// routes, AllAsyncRoute's answer) to a binary getk or gatk carries the
// key and no text, as memcached's miss to them does, so that a client
// matching replies by key finds it.
func TestRouteBinaryGetKMissEchoesKey(t *testing.T) {
	const (
		binGetK = 0x0c
		binGATK = 0x23
	)
	srv := startCorvids(t, 1)[0]
	root := &route.Handle{Type: route.PrefixSelectorRoute, Policies: map[string]*route.Handle{
		"p:": poolRoute("A"),
		"a:": {Type: route.AllAsyncRoute, Children: []*route.Handle{poolRoute("A")}},
	}}
	_, addr := startRouter(t, &route.Config{Pools: onePools(srv), Root: root})
	c := testutil.Dial(t, addr)
	for _, key := range []string{"p:missing", "nowhere", "a:k"} {
		for _, op := range []byte{binGetK, binGATK} {
			req := testutil.BinaryRequest{Opcode: op, Key: []byte(key)}
			if op == binGATK {
				req.Extras = make([]byte, 4)
			}
			r := binDo(t, c, req)
			if r.Status() != 1 || string(r.Key()) != key || len(r.Value()) != 0 {
				t.Errorf("opcode %#x of %s: %v, want status 1 (not found) with the key and no value", op, key, r)
			}
		}
	}
}
