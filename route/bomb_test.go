package route

import (
	"fmt"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// doublingConsts returns a configuration whose const cN is defined from
// two uses of c(N-1), so that it expands to 2^n copies of c0, and whose
// route is route (which may use the consts).
func doublingConsts(n int, c0 string, def func(prev string) string, route string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"macros": {"c0": {"type": "constDef", "result": %s}`, c0)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, `, "c%d": {"type": "constDef", "result": %s}`, i, def(fmt.Sprintf("%%c%d%%", i-1)))
	}
	b.WriteString(`}, ` + twoPools + `"route": ` + route + `}`)
	return b.String()
}

// TestParseMcrouterStringBomb: a const that doubles a string at each of
// n levels is 2^n times its seed: it is refused instead of exhausting
// memory (n=40 would be 8 TB).
func TestParseMcrouterStringBomb(t *testing.T) {
	cfg := doublingConsts(22, `"xxxxxxxx"`, func(p string) string { return `"` + p + p + `"` },
		`{"type": "ErrorRoute", "response": "%c22%"}`)
	_, _, err := ParseMcrouter([]byte(cfg))
	if err == nil || !strings.Contains(err.Error(), "macros expand to more than") {
		t.Fatalf("a 32 MB macro expansion: err = %v, want it refused", err)
	}
	// The same doubling to a few KB is fine.
	cfg = doublingConsts(8, `"xxxxxxxx"`, func(p string) string { return `"` + p + p + `"` },
		`{"type": "ErrorRoute", "response": "%c8%"}`)
	c, _, err := ParseMcrouter([]byte(cfg))
	if err != nil || len(c.Root.Response) != 8<<8 {
		t.Fatalf("a 2 KB macro expansion: err = %v", err)
	}
}

// TestParseMcrouterMergeBomb: merge that doubles a list is bounded too.
func TestParseMcrouterMergeBomb(t *testing.T) {
	cfg := doublingConsts(24, `["PoolRoute|A"]`, func(p string) string {
		return `{"type": "merge", "params": ["` + p + `", "` + p + `"]}`
	}, `{"type": "FailoverRoute", "children": "%c24%"}`)
	_, _, err := ParseMcrouter([]byte(cfg))
	if err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("a merge of 16M routes: err = %v, want it refused", err)
	}
}

// TestParseMcrouterRouteBomb: a const used twice at each level is one
// value shared, but the routes it describes are a tree of 2^n handles:
// decoding is bounded instead of taking minutes and gigabytes.
func TestParseMcrouterRouteBomb(t *testing.T) {
	for name, c0 := range map[string]string{
		"new handles":  `"PoolRoute|A"`,
		"named handle": `{"type": "PoolRoute", "pool": "A", "name": "a"}`,
	} {
		cfg := doublingConsts(17, c0, func(p string) string {
			return `{"type": "FailoverRoute", "children": ["` + p + `", "` + p + `"]}`
		}, `"%c17%"`)
		if name == "named handle" {
			cfg = doublingConsts(18, c0, func(p string) string { return `["` + p + `", "` + p + `"]` },
				`{"type": "FailoverRoute", "children": "%c18%"}`)
		}
		_, _, err := ParseMcrouter([]byte(cfg))
		if err == nil || !strings.Contains(err.Error(), "more than") {
			t.Errorf("%s: 2^17 or more routes: err = %v, want it refused", name, err)
		}
	}
}

// TestDecodeYAMLAliasBomb: YAML aliases that double at each level
// ("billion laughs") are bounded as macros are.
func TestDecodeYAMLAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 PoolRoute|A\n")
	for i := 1; i <= 20; i++ {
		fmt.Fprintf(&b, "a%d: &a%d {type: FailoverRoute, children: [*a%d, *a%d]}\n", i, i, i-1, i-1)
	}
	b.WriteString("route: *a20\n")
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(b.String()), &doc); err != nil {
		t.Fatal(err)
	}
	route := doc.Content[0].Content[len(doc.Content[0].Content)-1]
	pools := map[string]*Pool{"A": {Name: "A", Servers: []Server{{Addr: "127.0.0.1:5001", Weight: 1}}}}
	_, _, err := DecodeYAML(route, "pools.p.route", pools, nil)
	if err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("2^20 routes by aliases: err = %v, want it refused", err)
	}
}
