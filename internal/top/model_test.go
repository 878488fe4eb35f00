package top

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// sample builds a sample at t with the given general stats and classes.
func sample(t time.Time, stats map[string]string, classes map[int]map[string]string, hot ...HotKey) Sample {
	return Sample{Time: t, Stats: stats, Classes: classes, HotKeys: hot, HotKeySource: "stats hotkeys"}
}

func key(s string) tea.KeyMsg {
	switch s {
	case "tab":
		return tea.KeyMsg{Type: tea.KeyTab}
	case "shift+tab":
		return tea.KeyMsg{Type: tea.KeyShiftTab}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)}
}

// update feeds msgs to m in order.
func update(m *Model, msgs ...tea.Msg) tea.Cmd {
	var cmd tea.Cmd
	for _, msg := range msgs {
		_, cmd = m.Update(msg)
	}
	return cmd
}

func mustContain(t *testing.T, view string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(view, w) {
			t.Errorf("view lacks %q:\n%s", w, view)
		}
	}
}

func mustNotContain(t *testing.T, view string, not ...string) {
	t.Helper()
	for _, w := range not {
		if strings.Contains(view, w) {
			t.Errorf("view has %q:\n%s", w, view)
		}
	}
}

// twoSamples are two polls of a server one second apart: 400 gets (300
// hits), 50 sets, two classes.
func twoSamples() (Sample, Sample) {
	t0 := time.Unix(1_700_000_000, 0)
	classes := func(items1, items2, hits1 string) map[int]map[string]string {
		return map[int]map[string]string{
			1: {"chunk_size": "96", "chunks_per_page": "10922", "total_pages": "1", "number": items1, "get_hits": hits1},
			5: {"chunk_size": "240", "chunks_per_page": "4369", "total_pages": "3", "number": items2, "evicted": "7"},
		}
	}
	a := sample(t0, map[string]string{
		"version": "1.6.18", "uptime": "100", "curr_connections": "3", "max_connections": "1024",
		"cmd_get": "1000", "get_hits": "900", "get_misses": "100", "cmd_set": "10",
		"bytes": "1048576", "limit_maxbytes": "67108864", "curr_items": "5", "evictions": "7",
	}, classes("2", "3", "0"))
	b := sample(t0.Add(time.Second), map[string]string{
		"version": "1.6.18", "uptime": "101", "curr_connections": "3", "max_connections": "1024",
		"cmd_get": "1400", "get_hits": "1200", "get_misses": "200", "cmd_set": "60",
		"bytes": "2097152", "limit_maxbytes": "67108864", "curr_items": "9", "evictions": "7",
	}, classes("8", "1", "300"), HotKey{"user:42", 1523.1}, HotKey{"feed:home", 811.4})
	return a, b
}

func TestModelShowsRates(t *testing.T) {
	m := New(Config{Servers: []string{"a:1", "b:2"}, Interval: time.Second})
	a, b := twoSamples()
	update(m, tea.WindowSizeMsg{Width: 120, Height: 40}, SampleMsg{Server: 0, Sample: a})
	v := m.View()
	mustContain(t, v, "[1 a:1]", " 2 b:2 ", "version 1.6.18", "connections 3/1024", "(after the next sample)")
	update(m, SampleMsg{Server: 0, Sample: b})
	v = m.View()
	mustContain(t, v,
		"total 450 ", "get 400", "set 50",
		"ratio 75.0% (all-time 85.7%)", // 300 of 400 now; 1200 of 1400 in all
		"memory 2.0 MB / 64.0 MB (3.1%)",
		"user:42", "1523", "feed:home", "811",
		"hot keys (stats hotkeys)",
	)
	if lines := strings.Count(v, "\n") + 1; lines != 40 {
		t.Errorf("view is %d lines, want the terminal's 40", lines)
	}
	for i, l := range strings.Split(v, "\n") {
		if w := len([]rune(l)); w > 120 {
			t.Errorf("line %d is %d wide: %q", i, w, l)
		}
	}
}

// classOrder returns the class ids of the table in the view, top down.
func classOrder(v string) []string {
	var ids []string
	in := false
	for _, l := range strings.Split(v, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 0 && strings.HasPrefix(f[0], "class"):
			in = true
		case in && len(f) == 0:
			return ids
		case in:
			ids = append(ids, f[0])
		}
	}
	return ids
}

func TestModelSortKey(t *testing.T) {
	m := New(Config{Servers: []string{"a:1"}})
	a, b := twoSamples()
	update(m, SampleMsg{Sample: a}, SampleMsg{Sample: b})
	steps := []struct {
		column string
		order  string
	}{
		{"class", "1 5"},
		{"items", "1 5"},   // 8 items, 1
		{"memory", "5 1"},  // 3 pages of 1 MB, 1
		{"evicted", "5 1"}, // 7, 0
		{"gets/s", "1 5"},  // 300/s, 0
	}
	for i, s := range steps {
		if i > 0 {
			update(m, key("s"))
		}
		v := m.View()
		mustContain(t, v, "sort: "+s.column, s.column+"*")
		if got := strings.Join(classOrder(v), " "); got != s.order {
			t.Errorf("sorted by %s: classes %q, want %q\n%s", s.column, got, s.order, v)
		}
	}
	for range len(SortColumns) - len(steps) + 1 {
		update(m, key("s"))
	}
	mustContain(t, m.View(), "sort: class")
}

func TestModelDownServerAndTabs(t *testing.T) {
	m := New(Config{Servers: []string{"a:1", "b:2"}})
	a, _ := twoSamples()
	update(m, SampleMsg{Server: 0, Sample: a},
		SampleMsg{Server: 1, Err: errors.New("dial tcp b:2: connection refused")})
	v := m.View()
	mustContain(t, v, "[1 a:1]", "2 b:2 DOWN")
	mustNotContain(t, v, "connection refused")

	update(m, key("tab"))
	v = m.View()
	mustContain(t, v, "[2 b:2 DOWN]", "DOWN  dial tcp b:2: connection refused")
	mustNotContain(t, v, "version 1.6.18")

	update(m, key("tab"))
	mustContain(t, m.View(), "[1 a:1]")
	update(m, key("shift+tab"))
	mustContain(t, m.View(), "[2 b:2 DOWN]")

	// The server comes back: it is shown, and a later failure keeps the
	// last sample on screen below the error.
	update(m, SampleMsg{Server: 1, Sample: a})
	mustContain(t, m.View(), "[2 b:2]", "version 1.6.18")
	update(m, SampleMsg{Server: 1, Err: errors.New("i/o timeout")})
	mustContain(t, m.View(), "DOWN  i/o timeout", "last seen:", "version 1.6.18")
}

// run executes cmd and the commands it batches, and returns the messages
// they produce; a tick is returned but not followed.
func run(cmd tea.Cmd) []tea.Msg {
	if cmd == nil {
		return nil
	}
	switch msg := cmd().(type) {
	case tea.BatchMsg:
		var out []tea.Msg
		for _, c := range msg {
			out = append(out, run(c)...)
		}
		return out
	default:
		return []tea.Msg{msg}
	}
}

func TestModelPollsPauseAndQuit(t *testing.T) {
	a, b := twoSamples()
	var polls atomic.Int32
	fetch := func(ctx context.Context, addr string) (Sample, error) {
		if polls.Add(1) == 1 {
			return a, nil
		}
		return b, nil
	}
	m := New(Config{Servers: []string{"a:1"}, Interval: time.Millisecond, Fetch: fetch})
	msgs := run(m.Init())
	var got []SampleMsg
	ticks := 0
	for _, msg := range msgs {
		switch msg := msg.(type) {
		case SampleMsg:
			got = append(got, msg)
		case TickMsg:
			ticks++
		}
	}
	if len(got) != 1 || ticks != 1 {
		t.Fatalf("Init: %d polls, %d ticks, want 1 and 1", len(got), ticks)
	}
	// While a poll runs, a tick starts no other.
	if msgs := run(update(m, TickMsg{})); len(msgs) != 1 || polls.Load() != 1 {
		t.Fatalf("tick during a poll: %v, %d polls", msgs, polls.Load())
	}
	update(m, got[0])
	msgs = run(update(m, TickMsg{}))
	if len(msgs) != 2 {
		t.Fatalf("tick: %v", msgs)
	}
	for _, msg := range msgs {
		update(m, msg)
	}
	mustContain(t, m.View(), "get 400")

	// Paused: ticks poll nothing, results are dropped, the screen stays.
	update(m, key("p"))
	frozen := m.View()
	mustContain(t, frozen, "PAUSED")
	if msgs := run(update(m, TickMsg{})); len(msgs) != 1 || polls.Load() != 2 {
		t.Fatalf("tick while paused: %v, %d polls", msgs, polls.Load())
	}
	c, _ := twoSamples()
	c.Time = b.Time.Add(time.Second)
	update(m, SampleMsg{Sample: c})
	if v := m.View(); v != frozen {
		t.Errorf("paused view changed:\n%s\nwas\n%s", v, frozen)
	}
	// Unpaused: a poll at once.
	if msgs := run(update(m, key("p"))); len(msgs) != 1 || polls.Load() != 3 {
		t.Fatalf("unpause: %v, %d polls", msgs, polls.Load())
	}
	mustNotContain(t, m.View(), "PAUSED")

	// q quits and ends the polls still running.
	cmd := update(m, key("q"))
	if cmd == nil {
		t.Fatal("q: no command")
	}
	if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Error("q does not quit")
	}
	if m.ctx.Err() == nil {
		t.Error("polls not stopped")
	}
}

// TestModelKeysAreEscaped: a key may hold any byte but space and newline;
// the screen shows control bytes as %XX, so a key cannot drive the
// terminal.
func TestModelKeysAreEscaped(t *testing.T) {
	m := New(Config{Servers: []string{"a:1"}})
	a, _ := twoSamples()
	a.HotKeys = []HotKey{{"evil\x1b[2J\x07\xff%", 9}}
	update(m, SampleMsg{Sample: a})
	v := m.View()
	mustContain(t, v, "evil%1B[2J%07%FF%25")
	if strings.IndexByte(v, 0x07) >= 0 || strings.IndexByte(v, 0xff) >= 0 || strings.Contains(v, "\x1b[2J") {
		t.Errorf("raw key bytes on screen: %q", v)
	}
}
