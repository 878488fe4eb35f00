package mctool

import (
	"bytes"
	"sort"
	"time"
)

// Stat is one "STAT name value" line.
type Stat struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Stats sends "stats" or "stats <sub>" and returns the lines in the
// server's order. The whole reply must arrive within the Conn's timeout.
func (c *Conn) Stats(sub string) ([]Stat, error) {
	c.replyBy = time.Now().Add(c.timeout)
	defer func() { c.replyBy = time.Time{} }()
	req := "stats"
	if sub != "" {
		req += " " + sub
	}
	if err := c.send(req + "\r\n"); err != nil {
		return nil, err
	}
	var out []Stat
	for {
		line, err := c.line()
		if err != nil {
			return nil, err
		}
		switch {
		case string(line) == "END":
			return out, nil
		case bytes.HasPrefix(line, []byte("STAT ")):
			name, value, _ := bytes.Cut(line[5:], []byte(" "))
			out = append(out, Stat{Name: string(name), Value: string(value)})
		case len(out) == 0 && isErrorLine(line):
			return nil, c.refused(req, line)
		default:
			return nil, c.garbage(req, line)
		}
	}
}

// StatMap returns stats as a map; of repeated names the last counts.
func StatMap(stats []Stat) map[string]string {
	m := make(map[string]string, len(stats))
	for _, s := range stats {
		m[s.Name] = s.Value
	}
	return m
}

// sortedNames returns the names of the maps, sorted bytewise and without
// repeats.
func sortedNames(maps []map[string]string) []string {
	seen := map[string]bool{}
	var names []string
	for _, m := range maps {
		for n := range m {
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	return names
}

// Version sends "version" and returns what the server says it is; a
// server that answers anything else is not memcached.
func (c *Conn) Version() (string, error) {
	if err := c.send("version\r\n"); err != nil {
		return "", err
	}
	line, err := c.line()
	if err != nil {
		return "", err
	}
	v, ok := bytes.CutPrefix(line, []byte("VERSION "))
	if !ok {
		return "", c.garbage("version", line)
	}
	return string(v), nil
}
