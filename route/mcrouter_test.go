package route

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// render writes a route tree compactly, to compare with a table.
func render(h *Handle) string {
	if h == nil {
		return "<nil>"
	}
	var b strings.Builder
	name := strings.TrimSuffix(string(h.Type), "Route")
	switch h.Type {
	case PoolRoute:
		fmt.Fprintf(&b, "Pool(%s", h.Pool)
		if h.Hash.Func != "Ch3" {
			fmt.Fprintf(&b, " hash=%s", h.Hash.Func)
		}
		if h.Hash.Salt != "" {
			fmt.Fprintf(&b, " salt=%s", h.Hash.Salt)
		}
		if h.Hash.Weights != nil {
			fmt.Fprintf(&b, " weights=%v", h.Hash.Weights)
		}
		if h.Hash.HashTag != "" {
			fmt.Fprintf(&b, " tag=%s", h.Hash.HashTag)
		}
		for _, s := range h.Shadows {
			fmt.Fprintf(&b, " shadow{%s idx=%v keys=%v}", render(s.Target), s.IndexRange, s.KeyFractionRange)
		}
		b.WriteString(")")
		return b.String()
	case PrefixSelectorRoute, OperationSelectorRoute:
		b.WriteString(name + "{")
		keys := make([]string, 0, len(h.Policies))
		for k := range h.Policies {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s=%s ", k, render(h.Policies[k]))
		}
		if h.Wildcard != nil {
			fmt.Fprintf(&b, "*=%s", render(h.Wildcard))
		}
		if h.Default != nil {
			fmt.Fprintf(&b, "default=%s", render(h.Default))
		}
		return strings.TrimSuffix(b.String(), " ") + "}"
	case WarmUpRoute:
		return fmt.Sprintf("WarmUp(cold=%s warm=%s exptime=%d)", render(h.Cold), render(h.Warm), h.Exptime)
	case ErrorRoute:
		return fmt.Sprintf("Error(%q)", h.Response)
	case RateLimitRoute:
		keys := make([]string, 0, len(h.Rates))
		for k := range h.Rates {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("RateLimit(")
		for _, k := range keys {
			fmt.Fprintf(&b, "%s=%v/%v ", k, h.Rates[k].PerSecond, h.Rates[k].Burst)
		}
		return b.String() + render(h.Children[0]) + ")"
	}
	b.WriteString(name + "(")
	if h.Type == HashRoute {
		fmt.Fprintf(&b, "hash=%s ", h.Hash.Func)
		if h.Hash.Salt != "" {
			fmt.Fprintf(&b, "salt=%s ", h.Hash.Salt)
		}
	}
	if h.Type == LatestRoute {
		fmt.Fprintf(&b, "count=%d ", h.FailoverCount)
	}
	for i, c := range h.Children {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(render(c))
	}
	return b.String() + ")"
}

const twoPools = `"pools": {
    "A": {"servers": ["127.0.0.1:5001", "127.0.0.1:5002"]},
    "B": {"servers": ["127.0.0.1:5003"]},
  },`

func TestParseMcrouterShapes(t *testing.T) {
	for _, tc := range []struct {
		name, config, want string
	}{
		{"pool route string", `{` + twoPools + `"route": "PoolRoute|A"}`, "Pool(A)"},
		{"pool route object", `{` + twoPools + `"route": {"type": "PoolRoute", "pool": "A", "hash": "Crc32"}}`, "Pool(A hash=Crc32)"},
		{"hash object", `{` + twoPools + `"route": {"type": "PoolRoute", "pool": "A", "hash": {"hash_func": "ketama/md5", "salt": "s", "hash_tag": "{}"}}}`,
			"Pool(A hash=ketama/md5 salt=s tag={})"},
		{"failover of pools", `{` + twoPools + `
  "route": {"type": "FailoverRoute", "children": ["PoolRoute|A", "PoolRoute|B"]}}`, "Failover(Pool(A) Pool(B))"},
		{"failover short form over servers", `{` + twoPools + `"route": "FailoverRoute|Pool|A"}`, "Failover(Pool(A[0]) Pool(A[1]))"},
		{"pool of one server as a route", `{` + twoPools + `"route": "Pool|B"}`, "Pool(B[0])"},
		{"children as one string", `{` + twoPools + `"route": {"type": "AllSyncRoute", "children": "Pool|A"}}`, "AllSync(Pool(A[0]) Pool(A[1]))"},
		{"nested lists flatten", `{` + twoPools + `"route": {"type": "AllAsyncRoute", "children": [["PoolRoute|A"], "Pool|A", []]}}`,
			"AllAsync(Pool(A) Pool(A[0]) Pool(A[1]))"},
		{"all the fan-outs", `{` + twoPools + `"route": {"type": "RandomRoute", "children": ["AllInitialRoute|PoolRoute|A", "AllMajorityRoute|PoolRoute|B", "AllFastestRoute|Pool|A"]}}`,
			"Random(AllInitial(Pool(A)) AllMajority(Pool(B)) AllFastest(Pool(A[0]) Pool(A[1])))"},
		{"empty children is a NullRoute", `{` + twoPools + `"route": {"type": "FailoverRoute", "children": []}}`, "Null()"},
		{"prefix selector", `{` + twoPools + `
  "route": {"type": "PrefixSelectorRoute",
    "policies": {"user:": "PoolRoute|A", "user:session:": "PoolRoute|B"},
    "wildcard": "NullRoute"}}`, "PrefixSelector{user:=Pool(A) user:session:=Pool(B) *=Null()}"},
		{"routes list with aliases", `{` + twoPools + `
  "routes": [
    {"aliases": ["/dc1/c1/"], "route": "PoolRoute|B"},
    {"aliases": ["/dc2/c1/", "/././"], "route": "PoolRoute|A"},
  ]}`, "Pool(A)"},
		{"routes object", `{` + twoPools + `"routes": {"/././": "PoolRoute|B", "/x/y/": "PoolRoute|A"}}`, "Pool(B)"},
		{"replicated pools", `{` + twoPools + `
  "route": {"type": "OperationSelectorRoute",
    "operation_policies": {
      "get": {"type": "MissFailoverRoute", "children": ["PoolRoute|A", "PoolRoute|B"]},
      "delete": {"type": "AllSyncRoute", "children": ["PoolRoute|A", "PoolRoute|B"]},
    },
    "default_policy": {"type": "AllSyncRoute", "children": ["PoolRoute|A", "PoolRoute|B"]}}}`,
			"OperationSelector{delete=AllSync(Pool(A) Pool(B)) get=MissFailover(Pool(A) Pool(B)) default=AllSync(Pool(A) Pool(B))}"},
		{"warm-up", `{` + twoPools + `"route": {"type": "WarmUpRoute", "cold": "PoolRoute|B", "warm": "PoolRoute|A", "exptime": 3600}}`,
			"WarmUp(cold=Pool(B) warm=Pool(A) exptime=3600)"},
		{"shadowing", `{` + twoPools + `
  "route": {"type": "PoolRoute", "pool": "A",
    "shadows": [{"target": "PoolRoute|B", "index_range": [0, 2], "key_fraction_range": [0, 0.1]}]}}`,
			"Pool(A shadow{Pool(B) idx=[0 1] keys=[0 0.1]})"},
		{"hash route", `{` + twoPools + `"route": {"type": "HashRoute", "children": "Pool|A", "hash_func": "Crc32", "salt": "x"}}`,
			"Hash(hash=Crc32 salt=x Pool(A[0]) Pool(A[1]))"},
		{"hash route short", `{` + twoPools + `"route": "HashRoute|Pool|A"}`, "Hash(hash=Ch3 Pool(A[0]) Pool(A[1]))"},
		{"latest", `{` + twoPools + `"route": {"type": "LatestRoute", "children": "Pool|A", "failover_count": 1}}`,
			"Latest(count=1 Pool(A[0]) Pool(A[1]))"},
		{"latest default count", `{` + twoPools + `"route": "LatestRoute|Pool|A"}`, "Latest(count=5 Pool(A[0]) Pool(A[1]))"},
		{"error route forms", `{` + twoPools + `"route": {"type": "FailoverRoute", "children": ["ErrorRoute", "ErrorRoute|no way", {"type": "ErrorRoute", "response": "down"}]}}`,
			`Failover(Error("") Error("no way") Error("down"))`},
		{"rate limit", `{` + twoPools + `"route": {"type": "RateLimitRoute", "target": "PoolRoute|A", "rates": {"gets_rate": 100, "sets_rate": 10, "sets_burst": 50}}}`,
			"RateLimit(gets=100/100 sets=10/50 Pool(A))"},
		{"pool route rates", `{` + twoPools + `"route": {"type": "PoolRoute", "pool": "A", "rates": {"deletes_rate": 5}}}`,
			"RateLimit(deletes=5/5 Pool(A))"},
		{"pool weights make WeightedCh3", `{"pools": {"W": {"servers": ["h1:1", "h2:2"], "weights": [1, 0.5]}}, "route": "PoolRoute|W"}`,
			"Pool(W hash=WeightedCh3 weights=[1 0.5])"},
		{"inline pool", `{"route": {"type": "PoolRoute", "pool": {"name": "I", "servers": ["h:11211"]}}}`, "Pool(I)"},
		{"named handle reused", `{` + twoPools + `
  "route": {"type": "FailoverRoute", "children": [
    {"type": "PoolRoute", "pool": "A", "name": "main"},
    {"type": "AllSyncRoute", "children": ["main", "PoolRoute|B"]},
    {"type": "PoolRoute", "pool": "A", "name": "main"}]}}`,
			"Failover(Pool(A) AllSync(Pool(A) Pool(B)) Pool(A))"},
		{"named_handles list", `{` + twoPools + `
  "named_handles": [{"name": "fo", "type": "FailoverRoute", "children": ["PoolRoute|A", "PoolRoute|B"]}],
  "route": {"type": "MissFailoverRoute", "children": ["fo", "PoolRoute|B"]}}`, "MissFailover(Failover(Pool(A) Pool(B)) Pool(B))"},
		{"named_handles object, used before its place", `{` + twoPools + `
  "named_handles": {"b": {"name": "b", "type": "FailoverRoute", "children": ["a", "PoolRoute|B"]},
                    "a": "PoolRoute|A"},
  "route": "b"}`, "Failover(Pool(A) Pool(B))"},
		{"prefix selector with named policy", `{` + twoPools + `
  "route": {"type": "PrefixSelectorRoute",
    "policies": {"a": {"name": "x", "type": "PoolRoute", "pool": "A"}, "b": "x"}}}`,
			"PrefixSelector{a=Pool(A) b=Pool(A)}"},
		{"macro call string", `{
  "macros": {
    "failover": {"type": "macroDef", "params": ["first", {"name": "second", "default": "B"}],
                 "result": {"type": "FailoverRoute", "children": ["PoolRoute|%first%", "PoolRoute|%second%"]}},
  },` + twoPools + `"route": "@failover(A)"}`, "Failover(Pool(A) Pool(B))"},
		{"macro call object and consts", `{
  "macros": {
    "main_pool": {"type": "constDef", "result": "A"},
    "servers": {"type": "constDef", "result": ["127.0.0.1:1", "127.0.0.1:2"]},
    "warm": {"type": "macroDef", "params": ["cold", "warm", {"name": "ttl", "default": 60}],
             "result": {"type": "WarmUpRoute", "cold": "PoolRoute|%cold%", "warm": "PoolRoute|%warm%", "exptime": "%ttl%"}},
  },
  "pools": {"A": {"servers": "%servers%"}, "B": {"servers": ["127.0.0.1:3"]}},
  "route": {"type": "warm", "cold": "B", "warm": "%main_pool%"}}`, "WarmUp(cold=Pool(B) warm=Pool(A) exptime=60)"},
		{"built-in macros", `{
  "macros": {
    "env": {"type": "constDef", "result": "prod"},
    "pools_by_env": {"type": "constDef", "result": {"prod": "PoolRoute|A", "test": "PoolRoute|B"}},
    "ttl": {"type": "constDef", "result": "30"},
  },` + twoPools + `
  "route": {"type": "WarmUpRoute",
    "cold": "@select(%pools_by_env%, %env%)",
    "warm": {"type": "if", "condition": "@bool(true)", "is_true": "PoolRoute|B", "is_false": "PoolRoute|A"},
    "exptime": "@int(%ttl%)"}}`, "WarmUp(cold=Pool(A) warm=Pool(B) exptime=30)"},
		{"merge", `{` + twoPools + `"route": {"type": "AllSyncRoute", "children": {"type": "merge", "params": [["PoolRoute|A"], ["PoolRoute|B"]]}}}`,
			"AllSync(Pool(A) Pool(B))"},
		{"escaped percent", `{"pools": {"A\\%": {"servers": ["h:1"]}}, "route": "PoolRoute|A\\%"}`, "Pool(A%)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := ParseMcrouter([]byte(tc.config), WithReadFile(nil))
			if err != nil {
				t.Fatalf("ParseMcrouter: %v", err)
			}
			if got := render(cfg.Root); got != tc.want {
				t.Errorf("route\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestParseMcrouterErrors(t *testing.T) {
	for _, tc := range []struct {
		name, config, want string
	}{
		{"unknown type", `{` + twoPools + `"route": {"type": "FailoverRoute", "children": ["PoolRoute|A", {"type": "FooRoute"}]}}`,
			`route.children[1]: unknown type "FooRoute"`},
		{"unknown short type", `{` + twoPools + `"route": "FooRoute|A"}`, `route: unknown type "FooRoute"`},
		{"bare name not defined", `{` + twoPools + `"route": "main"}`, `route: unknown type "main" (nor a route named so before it)`},
		{"mcrouter type corvid lacks", `{` + twoPools + `"route": {"type": "MigrateRoute", "from": "PoolRoute|A", "to": "PoolRoute|B"}}`,
			`route: type "MigrateRoute" is not supported by corvid`},
		{"unknown property", `{` + twoPools + `"route": {"type": "FailoverRoute", "children": "Pool|A", "failover_policy": {}}}`,
			`route: unknown property "failover_policy" of FailoverRoute`},
		{"unknown shadow property", `{` + twoPools + `"route": {"type": "PoolRoute", "pool": "A", "shadows": [{"target": "PoolRoute|B", "keys_to_shadow": []}]}}`,
			`route.shadows[0]: unknown property "keys_to_shadow" of a shadow`},
		{"missing pool", `{` + twoPools + `"route": {"type": "FailoverRoute", "children": ["PoolRoute|A", "PoolRoute|C"]}}`,
			`route.children[1]: pool "C" is not defined`},
		{"missing pool of Pool|", `{` + twoPools + `"route": "FailoverRoute|Pool|C"}`, `route: pool "C" is not defined`},
		{"PoolRoute without pool", `{` + twoPools + `"route": {"type": "PoolRoute"}}`, `route: PoolRoute has no pool`},
		{"children of the wrong type", `{` + twoPools + `"route": {"type": "FailoverRoute", "children": 3}}`,
			`route.children: want a route or a list of routes, not a number`},
		{"child of the wrong type", `{` + twoPools + `"route": {"type": "AllSyncRoute", "children": ["PoolRoute|A", true]}}`,
			`route.children[1]: want a route (an object, a string or a list), not a boolean`},
		{"no children", `{` + twoPools + `"route": {"type": "AllSyncRoute"}}`, `route: AllSyncRoute has no children`},
		{"policies of the wrong type", `{` + twoPools + `"route": {"type": "PrefixSelectorRoute", "policies": ["PoolRoute|A"]}}`,
			`route.policies: want an object, not a list`},
		{"one route wanted", `{` + twoPools + `"route": {"type": "WarmUpRoute", "cold": "Pool|A", "warm": "PoolRoute|B"}}`,
			`route.cold: want one route, found 2`},
		{"warm-up without warm", `{` + twoPools + `"route": {"type": "WarmUpRoute", "cold": "PoolRoute|A"}}`, `route: WarmUpRoute has no "warm" route`},
		{"key_fraction_range above 1", `{` + twoPools + `"route": {"type": "PoolRoute", "pool": "A", "shadows": [{"target": "PoolRoute|B", "index_range": [0, 1], "key_fraction_range": [0, 1.5]}]}}`,
			`route.shadows[0].key_fraction_range: [0, 1.5] is outside [0, 1]`},
		{"key_fraction_range negative", `{` + twoPools + `"route": {"type": "PoolRoute", "pool": "A", "shadows": [{"target": "PoolRoute|B", "key_fraction_range": [-0.1, 0.5]}]}}`,
			`route.shadows[0].key_fraction_range: [-0.1, 0.5] is outside [0, 1]`},
		{"key_fraction_range reversed", `{` + twoPools + `"route": {"type": "PoolRoute", "pool": "A", "shadows": [{"target": "PoolRoute|B", "key_fraction_range": [0.5, 0.1]}]}}`,
			`route.shadows[0].key_fraction_range: [0.5, 0.1] is reversed`},
		{"index_range reversed", `{` + twoPools + `"route": {"type": "PoolRoute", "pool": "A", "shadows": [{"target": "PoolRoute|B", "index_range": [2, 1]}]}}`,
			`route.shadows[0].index_range: [2, 1] is not a range of server indexes`},
		{"unknown operation", `{` + twoPools + `"route": {"type": "OperationSelectorRoute", "operation_policies": {"fetch": "PoolRoute|A"}}}`,
			`route.operation_policies: unknown operation "fetch"`},
		{"unknown hash", `{` + twoPools + `"route": {"type": "PoolRoute", "pool": "A", "hash": "Md5"}}`, `route: unknown hash function "Md5"`},
		{"weights do not match", `{` + twoPools + `"route": {"type": "PoolRoute", "pool": "A", "hash": {"hash_func": "WeightedCh3", "weights": [1]}}}`,
			`route: WeightedCh3 needs one weight per destination: 1 weights, 2 destinations`},
		{"bad rate", `{` + twoPools + `"route": {"type": "RateLimitRoute", "target": "PoolRoute|A", "rates": {"gets_rate": 0}}}`,
			`route.rates.gets_rate: want a positive number, not 0`},
		{"cycle of named handles", `{` + twoPools + `
  "named_handles": {"a": {"name": "a", "type": "FailoverRoute", "children": ["b"]},
                    "b": {"name": "b", "type": "FailoverRoute", "children": ["a", "PoolRoute|A"]}},
  "route": "a"}`, `named_handles.b.children[0]: a cycle: route "a" is used inside its own definition at named_handles.a`},
		{"named handle inside itself", `{` + twoPools + `"route": {"name": "x", "type": "FailoverRoute", "children": ["PoolRoute|A", "x"]}}`,
			`route.children[1]: a cycle: route "x" is used inside its own definition at route`},
		{"named handle defined twice", `{` + twoPools + `"route": {"type": "FailoverRoute", "children": [{"name": "x", "type": "PoolRoute", "pool": "A"}, {"name": "x", "type": "PoolRoute", "pool": "B"}]}}`,
			`route.children[1]: route "x" is defined twice, differently (first at route.children[0])`},
		{"macro calling itself", `{"macros": {"m": {"type": "macroDef", "result": "@m"}},` + twoPools + `"route": "@m"}`,
			`route: macros nested more than 250 deep (a macro that calls itself?)`},
		{"consts referring to each other", `{"macros": {"a": {"type": "constDef", "result": "%b%"}, "b": {"type": "constDef", "result": "%a%"}},` + twoPools + `"route": "PoolRoute|%a%"}`,
			`route: const "a" refers to itself`},
		{"macros that double", `{"macros": {` +
			`"a": {"type": "macroDef", "result": ["@b", "@b"]}, "b": {"type": "macroDef", "result": ["@c", "@c"]},` +
			`"c": {"type": "macroDef", "result": ["@d", "@d"]}, "d": {"type": "macroDef", "result": ["@e", "@e"]},` +
			`"e": {"type": "macroDef", "result": ["@f", "@f"]}, "f": {"type": "macroDef", "result": ["@g", "@g"]},` +
			`"g": {"type": "macroDef", "result": ["@h", "@h"]}, "h": {"type": "macroDef", "result": ["@i", "@i"]},` +
			`"i": {"type": "macroDef", "result": ["@j", "@j"]}, "j": {"type": "macroDef", "result": ["@k", "@k"]},` +
			`"k": {"type": "macroDef", "result": ["@l", "@l"]}, "l": {"type": "macroDef", "result": ["@m", "@m"]},` +
			`"m": {"type": "macroDef", "result": ["@n", "@n"]}, "n": {"type": "macroDef", "result": ["@o", "@o"]},` +
			`"o": {"type": "macroDef", "result": ["@p", "@p"]}, "p": {"type": "macroDef", "result": ["@q", "@q"]},` +
			`"q": {"type": "macroDef", "result": ["@r", "@r"]}, "r": {"type": "macroDef", "result": ["@s", "@s"]},` +
			`"s": {"type": "macroDef", "result": ["@t", "@t"]}, "t": {"type": "macroDef", "result": ["@u", "@u"]},` +
			`"u": {"type": "macroDef", "result": "NullRoute"}},` + twoPools + `"route": {"type": "AllSyncRoute", "children": "@a"}}`,
			`route.children[0][0][0][0][1][1][1][1][1][1][1][1][1][1][1][1]: macros expand to more than 262144 values`},
		{"unknown macro", `{` + twoPools + `"route": "@nope(1)"}`, `route: unknown macro "nope"`},
		{"macro argument missing", `{"macros": {"m": {"type": "macroDef", "params": ["a", "b"], "result": "PoolRoute|%a%"}},` + twoPools + `"route": "@m(A)"}`,
			`route: macro "m": parameter "b" is missing`},
		{"unknown parameter", `{` + twoPools + `"route": "PoolRoute|%nope%"}`, `route: unknown parameter %nope%`},
		{"JSON missing comma", "{\n  \"route\": \"PoolRoute|A\"\n  \"pools\": {}\n}", `3:3: want ',' or '}', found '"'`},
		{"JSON cut short", "{\"route\": [", `1:12: unexpected end of input`},
		{"JSON comment not closed", "{ /* \"route\": 1 }", `1:3: comment not closed`},
		{"JSON string not closed", "{\"route\": \"abc}", `1:11: string not closed`},
		{"JSON junk after", "{} x", `1:4: unexpected 'x' after the end of the configuration`},
		{"not an object", `["PoolRoute|A"]`, `the configuration is a list, not an object`},
		{"no route", `{` + twoPools + `}`, `no "route" or "routes"`},
		{"route and routes", `{` + twoPools + `"route": "PoolRoute|A", "routes": {}}`, `routes: both "route" and "routes" are given`},
		{"no route for the prefix", `{` + twoPools + `"routes": [{"aliases": ["/a/b/"], "route": "PoolRoute|A"}]}`,
			`routes: no route for the routing prefix "/././"`},
		{"servers missing", `{"pools": {"A": {"servers": []}}, "route": "PoolRoute|A"}`, `pools.A.servers: no servers`},
		{"bad server", `{"pools": {"A": {"servers": ["localhost"]}}, "route": "PoolRoute|A"}`,
			`pools.A.servers[0]: server "localhost" is not "host:port"`},
		{"bad port", `{"pools": {"A": {"servers": ["h:99999"]}}, "route": "PoolRoute|A"}`,
			`pools.A.servers[0]: server "h:99999" is not "host:port"`},
		{"import forbidden", `{` + twoPools + `"route": "@import(x.json)"}`, `route: @import(x.json): imports are not allowed here`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := ParseMcrouter([]byte(tc.config), WithReadFile(nil))
			if err == nil {
				t.Fatalf("ParseMcrouter accepted it: %s", render(cfg.Root))
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got %s\nwant %s", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error has more than one line: %q", err)
			}
		})
	}
}

func TestParseMcrouterWarnings(t *testing.T) {
	cfg, warnings, err := ParseMcrouter([]byte(`{
  "pools": {
    "A": {"servers": ["127.0.0.1:5001:ascii", "127.0.0.1:5002:ascii:plain"], "protocol": "ascii", "keep_routing_prefix": false, "server_timeout": 250},
  },
  "route": {"type": "PoolRoute", "pool": "A", "asynclog": false,
            "shadows": [{"target": "PoolRoute|A", "key_fraction_range": [0, 0.5]}]},
  "route_handles_ignored": 1,
}`), WithReadFile(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`pools.A.servers: the protocol after host:port is ignored: corvid speaks memcached's text protocol to its servers`,
		`pools.A.protocol: ignored: corvid does not use pool property "protocol"`,
		`pools.A.keep_routing_prefix: ignored: corvid does not use pool property "keep_routing_prefix"`,
		`route_handles_ignored: ignored: corvid does not use "route_handles_ignored"`,
		`route.asynclog: ignored: corvid has no asynclog`,
		`route.shadows[0]: no index_range: as in mcrouter, nothing is shadowed`,
	}
	if strings.Join(warnings, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings\n got %q\nwant %q", warnings, want)
	}
	if got := cfg.Pools["A"].Timeout.String(); got != "250ms" {
		t.Errorf("server_timeout: got %s, want 250ms", got)
	}
	if got := cfg.Pools["A"].Servers[1].Addr; got != "127.0.0.1:5002" {
		t.Errorf("server address: got %s", got)
	}
	if cfg.Source != "--config-str" {
		t.Errorf("Source = %q", cfg.Source)
	}
}

func TestLoadMcrouterImport(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("conf/pools.json", `{ // pools shared by several configs
  "A": {"servers": ["127.0.0.1:5001"]},
  "B": {"servers": ["127.0.0.1:5002"]},
}`)
	write("conf/route.json", `{"type": "FailoverRoute", "children": ["PoolRoute|A", "PoolRoute|B"]}`)
	main := write("conf/main.json", `{"pools": "@import(pools.json)", "route": "@import(route.json)"}`)
	cfg, _, err := LoadMcrouter(main)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := render(cfg.Root), "Failover(Pool(A) Pool(B))"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if cfg.Source != main {
		t.Errorf("Source = %q, want %q", cfg.Source, main)
	}

	self := write("conf/self.json", `{"pools": "@import(self.json)", "route": "NullRoute"}`)
	if _, _, err := LoadMcrouter(self); err == nil || !strings.Contains(err.Error(), "imports itself") {
		t.Errorf("an import of itself: %v", err)
	}
	bad := write("conf/bad.json", `{"pools": "@import(missing.json)", "route": "NullRoute"}`)
	if _, _, err := LoadMcrouter(bad); err == nil || !strings.HasPrefix(err.Error(), bad+": pools: @import: ") {
		t.Errorf("a missing import: %v", err)
	}
	withDefault := write("conf/default.json", `{"pools": {"A": {"servers": ["h:1"]}}, "route": "@import(missing.json, NullRoute)"}`)
	if cfg, _, err := LoadMcrouter(withDefault); err != nil || render(cfg.Root) != "Null()" {
		t.Errorf("an import with a default: %v", err)
	}
	broken := write("conf/broken.json", "{\n  \"route\": \"NullRoute\",,\n}")
	if _, _, err := LoadMcrouter(broken); err == nil || err.Error() != broken+`: 2:24: want a key in quotes or '}', found ','` {
		t.Errorf("a broken file: %v", err)
	}
}

func TestParseMcrouterRoutePrefix(t *testing.T) {
	cfg, _, err := ParseMcrouter([]byte(`{`+twoPools+`"routes": [{"aliases": ["/dc1/a/"], "route": "PoolRoute|A"}, {"aliases": ["/dc2/a/"], "route": "PoolRoute|B"}]}`),
		WithRoutePrefix("/dc2/a/"))
	if err != nil {
		t.Fatal(err)
	}
	if got := render(cfg.Root); got != "Pool(B)" {
		t.Errorf("got %s, want Pool(B)", got)
	}
}
