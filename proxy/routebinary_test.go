package proxy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/route"
)

// Binary opcodes the route tests send.
const (
	binGet    = 0x00
	binSet    = 0x01
	binDelete = 0x04
	binNoop   = 0x0a
	binSetQ   = 0x11
)

// binDo sends req on c and reads its reply, failing the test on a
// read error; the reply must carry req's opcode and opaque.
func binDo(t *testing.T, c *testutil.Conn, req testutil.BinaryRequest) *testutil.BinaryResponse {
	t.Helper()
	req.Opaque = 0x5eed
	c.Send(req.Bytes())
	r, err := c.ReadBinary()
	if err != nil {
		t.Fatalf("binary opcode %#x: %v", req.Opcode, err)
	}
	if r.Opcode() != req.Opcode || r.Opaque() != req.Opaque {
		t.Fatalf("binary opcode %#x: reply %v carries another opcode or opaque", req.Opcode, r)
	}
	return r
}

func binSetReq(key, val string) testutil.BinaryRequest {
	return testutil.BinaryRequest{Opcode: binSet, Key: []byte(key), Value: []byte(val), Extras: make([]byte, 8)}
}

func binGetReq(key string) testutil.BinaryRequest {
	return testutil.BinaryRequest{Opcode: binGet, Key: []byte(key)}
}

// valueOn returns the value the server at addr holds for key, "" for none.
func valueOn(t *testing.T, addr, key string) string {
	t.Helper()
	c := testutil.Dial(t, addr)
	defer c.Close()
	got := roundTrip(c, "get "+key+"\r\n", testutil.ValuesReply)
	if _, rest, ok := strings.Cut(got, "\r\n"); ok && strings.HasPrefix(got, "VALUE ") {
		v, _, _ := strings.Cut(rest, "\r\n")
		return v
	}
	return ""
}

// TestRouteBinaryFanOut: a binary store through AllSyncRoute,
// AllAsyncRoute, AllInitialRoute, AllMajorityRoute and AllFastestRoute
// reaches every child, as the text store does, and is answered as the
// route answers it.
func TestRouteBinaryFanOut(t *testing.T) {
	for _, tc := range []struct {
		typ    route.Type
		status uint16 // the answer to the set
	}{
		{route.AllSyncRoute, 0},
		{route.AllAsyncRoute, 5}, // mcrouter's default reply: not stored
		{route.AllInitialRoute, 0},
		{route.AllMajorityRoute, 0},
		{route.AllFastestRoute, 0},
	} {
		t.Run(string(tc.typ), func(t *testing.T) {
			addrs := startCorvids(t, 2)
			root := &route.Handle{Type: tc.typ, Children: []*route.Handle{poolRoute("A"), poolRoute("B")}}
			_, addr := startRouter(t, &route.Config{Pools: onePools(addrs...), Root: root})
			c := testutil.Dial(t, addr)
			if r := binDo(t, c, binSetReq("k", "v1")); r.Status() != tc.status {
				t.Fatalf("set: %v, want status %d", r, tc.status)
			}
			for i, a := range addrs {
				await(t, "the set on child "+string(rune('A'+i)), func() bool { return valueOn(t, a, "k") == "v1" })
			}
			// A quiet set is answered by nothing but an error, in order.
			q := binSetReq("q", "v2")
			q.Opcode = binSetQ
			c.Send(q.Bytes())
			if r := binDo(t, c, testutil.BinaryRequest{Opcode: binNoop}); r.Status() != 0 {
				t.Fatalf("noop after setq: %v", r)
			}
			for i, a := range addrs {
				await(t, "the quiet set on child "+string(rune('A'+i)), func() bool { return valueOn(t, a, "q") == "v2" })
			}
		})
	}
}

// TestRouteBinaryAllSyncWorst: AllSyncRoute answers a binary request
// with its children's worst reply, as TestRouteAllSyncWorstReply in text.
func TestRouteBinaryAllSyncWorst(t *testing.T) {
	addrs := startCorvids(t, 2)
	root := &route.Handle{Type: route.AllSyncRoute, Children: []*route.Handle{poolRoute("A"), poolRoute("B")}}
	_, addr := startRouter(t, &route.Config{Pools: onePools(addrs...), Root: root})
	c := testutil.Dial(t, addr)
	if r := binDo(t, c, binSetReq("k", "v")); r.Status() != 0 {
		t.Fatalf("set: %v", r)
	}
	roundTrip(testutil.Dial(t, addrs[1]), "delete k\r\n", testutil.LineReply)
	// A deletes, B does not find it: the worse is not found.
	if r := binDo(t, c, testutil.BinaryRequest{Opcode: binDelete, Key: []byte("k")}); r.Status() != 1 {
		t.Fatalf("delete: %v, want status 1 (not found)", r)
	}
	root2 := &route.Handle{Type: route.AllSyncRoute, Children: []*route.Handle{
		poolRoute("A"), {Type: route.ErrorRoute, Response: "bad"}}}
	_, addr2 := startRouter(t, &route.Config{Pools: onePools(addrs...), Root: root2})
	if r := binDo(t, testutil.Dial(t, addr2), binSetReq("k", "v")); r.Status() != 0x84 || string(r.Value()) != "bad" {
		t.Fatalf("set with an ErrorRoute child: %v, want status 0x84 and the route's response", r)
	}
}

// TestRouteBinaryGets: a binary get through FailoverRoute,
// MissFailoverRoute, AllFastestRoute, AllMajorityRoute and NullRoute is
// answered as the text get is.
func TestRouteBinaryGets(t *testing.T) {
	addrs := startCorvids(t, 3)
	setVia(t, testutil.Dial(t, addrs[1]), "k", "inB") // A and C miss
	kids := func(hs ...*route.Handle) []*route.Handle { return hs }
	errR := &route.Handle{Type: route.ErrorRoute, Response: "e"}
	for _, tc := range []struct {
		name   string
		root   *route.Handle
		status uint16
		value  string
	}{
		{"failover on an error", &route.Handle{Type: route.FailoverRoute, Children: kids(errR, poolRoute("B"))}, 0, "inB"},
		{"failover keeps a miss", &route.Handle{Type: route.FailoverRoute, Children: kids(poolRoute("A"), poolRoute("B"))}, 1, ""},
		{"miss failover", &route.Handle{Type: route.MissFailoverRoute, Children: kids(poolRoute("A"), poolRoute("C"), poolRoute("B"))}, 0, "inB"},
		{"fastest skips errors", &route.Handle{Type: route.AllFastestRoute, Children: kids(errR, poolRoute("B"), errR)}, 0, "inB"},
		{"majority of hits", &route.Handle{Type: route.AllMajorityRoute, Children: kids(poolRoute("B"), errR, poolRoute("B"))}, 0, "inB"},
		{"majority of misses", &route.Handle{Type: route.AllMajorityRoute, Children: kids(poolRoute("A"), poolRoute("B"), poolRoute("C"))}, 1, ""},
		{"null", &route.Handle{Type: route.NullRoute}, 1, ""},
		{"error", errR, 0x84, "e"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, addr := startRouter(t, &route.Config{Pools: onePools(addrs...), Root: tc.root})
			r := binDo(t, testutil.Dial(t, addr), binGetReq("k"))
			if r.Status() != tc.status || tc.value != "" && string(r.Value()) != tc.value {
				t.Fatalf("get: %v, want status %#x and %q", r, tc.status, tc.value)
			}
		})
	}
}

// TestRouteBinaryWarmUp: a binary get that misses in cold is answered
// from warm, the value is added to cold, and the reply's CAS unique is
// cold's; a binary set goes to cold, as in text.
func TestRouteBinaryWarmUp(t *testing.T) {
	addrs := startCorvids(t, 2) // A cold, B warm
	root := &route.Handle{Type: route.WarmUpRoute, Name: "wu", Cold: poolRoute("A"), Warm: poolRoute("B"), Exptime: 100}
	p, addr := startRouter(t, &route.Config{Pools: onePools(addrs...), Root: root})
	setVia(t, testutil.Dial(t, addrs[1]), "k", "warmval")
	c := testutil.Dial(t, addr)
	r := binDo(t, c, binGetReq("k"))
	if r.Status() != 0 || string(r.Value()) != "warmval" {
		t.Fatalf("first get: %v", r)
	}
	if valueOn(t, addrs[0], "k") != "warmval" {
		t.Fatal("the warm hit was not added to cold")
	}
	var cas uint64
	gets := roundTrip(testutil.Dial(t, addrs[0]), "gets k\r\n", testutil.ValuesReply)
	if _, err := fmtSscan(gets, &cas); err != nil || r.CAS() != cas {
		t.Errorf("first get's CAS %d, cold's %q", r.CAS(), gets)
	}
	roundTrip(testutil.Dial(t, addrs[1]), "delete k\r\n", testutil.LineReply)
	if r := binDo(t, c, binGetReq("k")); r.Status() != 0 || string(r.Value()) != "warmval" {
		t.Fatalf("second get (from cold): %v", r)
	}
	if rs := routeStat(p, "wu"); rs.WarmFills != 1 {
		t.Errorf("warmup_fills = %d, want 1", rs.WarmFills)
	}
	if r := binDo(t, c, binSetReq("s", "x")); r.Status() != 0 {
		t.Fatalf("set: %v", r)
	}
	if !has(t, addrs[0], "s") || has(t, addrs[1], "s") {
		t.Error("a binary set did not go to cold only")
	}
}

// TestRouteBinaryShadow: a binary set is shadowed as a text one.
func TestRouteBinaryShadow(t *testing.T) {
	addrs := startCorvids(t, 2)
	prim := poolRoute("A")
	prim.Shadows = []route.Shadow{{Target: poolRoute("B"), KeyFractionRange: [2]float64{0, 1}}}
	p, addr := startRouter(t, &route.Config{Pools: onePools(addrs...), Root: prim})
	if r := binDo(t, testutil.Dial(t, addr), binSetReq("k", "v")); r.Status() != 0 {
		t.Fatalf("set: %v", r)
	}
	await(t, "the shadow copy", func() bool { return valueOn(t, addrs[1], "k") == "v" })
	if valueOn(t, addrs[0], "k") != "v" || routeStat(p, "poolA").ShadowSent != 1 {
		t.Errorf("primary %q, shadow_sent %d", valueOn(t, addrs[0], "k"), routeStat(p, "poolA").ShadowSent)
	}
}

// fmtSscan reads the CAS unique of a gets reply of one value.
func fmtSscan(gets string, cas *uint64) (int, error) {
	var key string
	var flags, size int
	return fmt.Sscanf(gets, "VALUE %s %d %d %d", &key, &flags, &size, cas)
}

// TestRouteBinaryWarmUpOddKey: a binary get whose key a text command
// cannot carry (here with a CRLF in it) goes to cold alone: the warm-up
// asks warm in text, and a split command would get two replies, which
// breaks warm's connection (and fails what other clients had on it).
func TestRouteBinaryWarmUpOddKey(t *testing.T) {
	addrs := startCorvids(t, 2) // A cold, B warm
	root := &route.Handle{Type: route.WarmUpRoute, Cold: poolRoute("A"), Warm: poolRoute("B"), Exptime: 100}
	p, addr := startRouter(t, &route.Config{Pools: onePools(addrs...), Root: root})
	setVia(t, testutil.Dial(t, addrs[1]), "k", "warmval")
	c := testutil.Dial(t, addr)
	for range 3 {
		if r := binDo(t, c, binGetReq("k")); r.Status() != 0 || string(r.Value()) != "warmval" {
			t.Fatalf("get: %v", r)
		}
		if r := binDo(t, c, binGetReq("x\r\nmn")); r.Status() != 1 {
			t.Fatalf("get of an odd key: %v, want a miss", r)
		}
	}
	for _, ps := range p.Stats().Pools {
		for _, ss := range ps.Servers {
			if ss.ServerErr > 0 || ss.ServerEOF > 0 {
				t.Errorf("pool %s: %d errors, %d EOFs: a connection broke", ps.Name, ss.ServerErr, ss.ServerEOF)
			}
		}
	}
}
