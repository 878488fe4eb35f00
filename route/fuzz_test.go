package route

import (
	"strings"
	"testing"
)

// FuzzParseMcrouter feeds arbitrary text to the parser: it must return,
// without panicking, either an error or a configuration Check accepts.
func FuzzParseMcrouter(f *testing.F) {
	for _, s := range []string{
		`{` + twoPools + `"route": "PoolRoute|A"}`,
		`{` + twoPools + `"route": {"type": "FailoverRoute", "children": ["PoolRoute|A", {"type": "PoolRoute", "pool": "B", "shadows": [{"target": "PoolRoute|A", "index_range": [0, 1], "key_fraction_range": [0, 0.1]}]}]}}`,
		`{"macros": {"m": {"type": "macroDef", "params": ["p"], "result": "@m(%p%)"}}, "route": "@m(x)"}`,
		`{"macros": {"c": {"type": "constDef", "result": "%c%"}}, "route": "%c%"}`,
		`{` + twoPools + `"named_handles": {"a": {"name": "a", "type": "HashRoute", "children": ["a"]}}, "route": "a"}`,
		`{` + twoPools + `"routes": [{"aliases": ["/././"], "route": {"type": "WarmUpRoute", "cold": "Pool|A", "warm": "LatestRoute|Pool|A"}}]}`,
		`{` + twoPools + `"route": {"type": "OperationSelectorRoute", "operation_policies": {"get": "@if(@bool(true), PoolRoute|A, PoolRoute|B)"}}}`,
		"{ /* c */ \"route\": [1, 2,], // x\n}",
		`{"route": "\ud83d\ude00\u0000"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg, _, err := ParseMcrouter([]byte(s), WithReadFile(nil))
		if err != nil {
			if strings.Contains(err.Error(), "\n") && !strings.Contains(s, "\n") {
				// messages quote the configuration's strings with %q
				t.Fatalf("error of more than one line: %q", err)
			}
			return
		}
		if err := Check(cfg); err != nil {
			t.Fatalf("ParseMcrouter returned a configuration Check refuses: %v", err)
		}
	})
}
