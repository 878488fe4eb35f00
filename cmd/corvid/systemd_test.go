//go:build unix

package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// systemdUnits are the service files in dist/systemd, with the environment
// file each one documents beside it.
var systemdUnits = []string{"corvid-server", "corvid-proxy", "corvid-queue"}

const systemdDir = "../../dist/systemd"

// TestSystemdUnitsVerify runs systemd-analyze verify on the units, with
// ExecStart pointing at a freshly built corvid: a misspelt key, a bad value
// or a missing binary is an error. Skipped without systemd-analyze.
func TestSystemdUnitsVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	bin := corvidBinary(t)
	dir := t.TempDir()
	var paths []string
	for _, u := range systemdUnits {
		b, err := os.ReadFile(filepath.Join(systemdDir, u+".service"))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, u+".service")
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "/usr/bin/corvid", bin)), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out, err := exec.Command(sa, append([]string{"verify"}, paths...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestSystemdUnitsCommandLines expands each unit's ExecStart lines with the
// defaults of its Environment= line and, separately, with its example
// environment file, and checks that corvid's own flag parser accepts them.
// A unit whose subcommand corvid does not have yet is skipped.
func TestSystemdUnitsCommandLines(t *testing.T) {
	for _, u := range systemdUnits {
		t.Run(u, func(t *testing.T) {
			unit := readUnit(t, filepath.Join(systemdDir, u+".service"))
			defaults := map[string]string{}
			for _, line := range unit["Environment"] {
				for _, kv := range splitQuoted(line) {
					k, v, _ := strings.Cut(kv, "=")
					defaults[k] = v
				}
			}
			file := map[string]string{}
			for k, v := range defaults {
				file[k] = v
			}
			for k, v := range readEnvFile(t, filepath.Join(systemdDir, u+".default")) {
				if _, ok := defaults[k]; !ok {
					t.Errorf("the environment file sets %s, which the unit has no default for", k)
				}
				file[k] = v
			}
			if len(unit["EnvironmentFile"]) != 1 || unit["EnvironmentFile"][0] != "-/etc/default/"+u {
				t.Errorf("EnvironmentFile = %q, want -/etc/default/%s", unit["EnvironmentFile"], u)
			}
			execs := append(unit["ExecStartPre"], unit["ExecStart"]...)
			if len(unit["ExecStart"]) != 1 {
				t.Fatalf("ExecStart = %q", unit["ExecStart"])
			}
			for _, env := range []map[string]string{defaults, file} {
				for _, line := range execs {
					args := expandExec(line, env)
					if len(args) < 2 || args[0] != "/usr/bin/corvid" {
						t.Fatalf("%q expands to %q", line, args)
					}
					root := newRootCommand()
					cmd, rest, err := root.Find(args[1:])
					if err != nil || cmd == root {
						t.Skipf("corvid has no %q command yet", args[1])
					}
					if err := cmd.ParseFlags(rest); err != nil {
						t.Errorf("%q: %v", args, err)
					}
					if extra := cmd.Flags().Args(); len(extra) > 0 {
						t.Errorf("%q: arguments %q left over", args, extra)
					}
				}
			}
		})
	}
}

// readUnit returns the values of each key of a unit file, in order.
func readUnit(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string][]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q", path, line)
		}
		keys[k] = append(keys[k], v)
	}
	return keys
}

// readEnvFile reads KEY=VALUE lines as systemd's EnvironmentFile= does,
// with one level of double quotes.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q", path, line)
		}
		env[k] = strings.Trim(v, `"`)
	}
	return env
}

// splitQuoted splits s at spaces outside double quotes, dropping the quotes.
func splitQuoted(s string) []string {
	var words []string
	var w strings.Builder
	quoted, any := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, any = !quoted, true
		case r == ' ' && !quoted:
			if any {
				words = append(words, w.String())
			}
			w.Reset()
			any = false
		default:
			w.WriteRune(r)
			any = true
		}
	}
	if any {
		words = append(words, w.String())
	}
	return words
}

// expandExec splits an Exec line into arguments as systemd does: ${NAME}
// is replaced by one argument, a word that is $NAME alone by the value's
// words (none when it is empty).
func expandExec(line string, env map[string]string) []string {
	var args []string
	for _, w := range strings.Fields(line) {
		if strings.HasPrefix(w, "$") && !strings.HasPrefix(w, "${") {
			args = append(args, strings.Fields(env[w[1:]])...)
			continue
		}
		args = append(args, os.Expand(w, func(k string) string { return env[k] }))
	}
	return args
}
