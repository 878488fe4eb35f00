package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/loadgen"
	"github.com/corvidcache/corvid/server"
)

func runBench(args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	root := newRootCommand()
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"bench"}, args...))
	err = root.Execute()
	return out.String(), errOut.String(), err
}

func TestBenchJSON(t *testing.T) {
	addr := testutil.StartCorvid(t, server.Config{})
	out, _, err := runBench("--server", addr, "-c", "3", "--pipeline", "4", "--multiget", "2",
		"--ratio", "3:1", "--keys", "300", "--prefill", "--requests", "600", "--value-size", "50-150", "--json", "-q")
	if err != nil {
		t.Fatal(err)
	}
	var res loadgen.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if res.Requests != 600 || res.GetKeys != 2*res.Gets || res.Hits != res.GetKeys || res.Errors != 0 ||
		res.Conns != 3 || res.Pipeline != 4 || res.ValueMin != 50 || res.ValueMax != 150 || res.Ratio != "3:1" {
		t.Errorf("unexpected result: %+v", res)
	}
	if res.Latency.P99 < res.Latency.P50 || res.Latency.P50 <= 0 {
		t.Errorf("latency %+v", res.Latency)
	}
}

func TestBenchText(t *testing.T) {
	addr := testutil.StartCorvid(t, server.Config{})
	out, _, err := runBench("-s", addr+","+addr, "--requests", "100")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"throughput", "p99.9", "100 requests", addr + ", " + addr} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestBenchBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{},                  // no server
		{"-s", "127.0.0.1"}, // no port
		{"-s", "127.0.0.1:1", "--pipeline", "0"},
		{"-s", "127.0.0.1:1", "-c", "0"},
		{"-s", "127.0.0.1:1", "-c", "-3"},
		{"-s", "127.0.0.1:1", "--multiget", "0"},
		{"-s", "127.0.0.1:1", "--ratio", "9"},
		{"-s", "127.0.0.1:1", "--ratio", "0:0"},
		{"-s", "127.0.0.1:1", "--value-size", "200-100"},
		{"-s", "127.0.0.1:1", "--value-size", "big"},
		{"-s", "127.0.0.1:1", "--protocol", "binary"},
		{"-s", "127.0.0.1:1", "--zipf", "1"},
		{"-s", "127.0.0.1:1", "--duration", "0s"},
		{"-s", "127.0.0.1:1", "--idle", "-1"},
		{"-s", "127.0.0.1:1", "extra-arg"},
	} {
		_, _, err := runBench(args...)
		if err == nil {
			t.Errorf("corvid bench %q succeeded", args)
			continue
		}
		if len(args) > 0 && args[len(args)-1] != "extra-arg" && !errors.Is(err, loadgen.ErrConfig) {
			t.Errorf("corvid bench %q: %v, want a configuration error", args, err)
		}
	}
}
