package ring

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// vectorFile is a set of placements recorded from a real implementation.
type vectorFile struct {
	// Source says what produced the placements.
	Source string    `json:"source"`
	Setups []vectors `json:"setups"`
}

// vectors is one pool and where the implementation put each key of
// testKeys(Prefix, Keys).
type vectors struct {
	Name         string       `json:"name"`
	Hash         string       `json:"hash"`
	Distribution Distribution `json:"distribution"`
	HashTag      string       `json:"hash_tag,omitempty"`
	Servers      []Server     `json:"servers"`
	Prefix       string       `json:"prefix"`
	Keys         int          `json:"keys"`
	// Placement holds one digit per key: the index of its server.
	Placement string `json:"placement"`
}

// testKeys returns n keys starting with prefix: short and long, with
// bytes above 0x7f (which some of twemproxy's hashes read as signed), and
// some with a "{…}" hash tag.
func testKeys(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		switch i % 7 {
		case 0:
			keys[i] = fmt.Sprintf("%suser:%d", prefix, i)
		case 1:
			keys[i] = fmt.Sprintf("%s%d", prefix, i)
		case 2:
			keys[i] = fmt.Sprintf("%sclé-été-%d", prefix, i*7919)
		case 3:
			keys[i] = fmt.Sprintf("%ssession:{u%d}:cart%d", prefix, i%23, i)
		case 4:
			keys[i] = fmt.Sprintf("%s%0*d", prefix, 1+i%97, i)
		case 5:
			keys[i] = fmt.Sprintf("%sключ/%x", prefix, i*2654435761)
		default:
			keys[i] = fmt.Sprintf("%sobj_%d_{}_{x%d", prefix, i, i%5)
		}
	}
	return keys
}

func readVectors(t *testing.T, name string) vectorFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var f vectorFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(f.Setups) == 0 {
		t.Fatalf("%s holds no setups", name)
	}
	return f
}

func writeVectors(t *testing.T, name string, f vectorFile) {
	t.Helper()
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", name), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkVectors builds each setup's Ring and fails for every key it places
// elsewhere than the recorded implementation did. It returns the number of
// keys checked.
func checkVectors(t *testing.T, setups []vectors) int {
	t.Helper()
	checked := 0
	for _, v := range setups {
		r, err := New(Config{Servers: v.Servers, Hash: v.Hash, Distribution: v.Distribution, HashTag: v.HashTag})
		if err != nil {
			t.Errorf("%s: %v", v.Name, err)
			continue
		}
		keys := testKeys(v.Prefix, v.Keys)
		if len(v.Placement) != len(keys) {
			t.Errorf("%s: %d placements for %d keys", v.Name, len(v.Placement), len(keys))
			continue
		}
		bad := 0
		for i, k := range keys {
			want := int(v.Placement[i] - '0')
			if got := r.PickString(k); got != want {
				if bad < 3 {
					t.Errorf("%s: key %q on server %d, recorded on %d", v.Name, k, got, want)
				}
				bad++
			}
			checked++
		}
		if bad > 0 {
			t.Errorf("%s: %d of %d keys misplaced", v.Name, bad, len(keys))
		}
	}
	return checked
}

func TestNutcrackerVectors(t *testing.T) {
	f := readVectors(t, "nutcracker.json")
	n := checkVectors(t, f.Setups)
	t.Logf("%d setups, %d keys agree with %s", len(f.Setups), n, f.Source)
}

func TestLibmemcachedVectors(t *testing.T) {
	f := readVectors(t, "libmemcached.json")
	n := checkVectors(t, f.Setups)
	t.Logf("%d setups, %d keys agree with %s", len(f.Setups), n, f.Source)
}
