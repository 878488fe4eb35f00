package top

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

// Config configures a Model. The zero Interval means one second; a nil
// Fetch polls with a Poller.
type Config struct {
	Servers  []string // host:port of each server, one tab each
	Interval time.Duration
	// Fetch polls one server; it must return when ctx ends.
	Fetch func(ctx context.Context, addr string) (Sample, error)
}

// SampleMsg carries the outcome of one poll of Servers[Server].
type SampleMsg struct {
	Server int
	Sample Sample
	Err    error
}

// TickMsg asks the model to poll every server not already being polled.
type TickMsg time.Time

// serverState is what the model knows of one server.
type serverState struct {
	addr      string
	prev, cur *Sample
	rates     *Rates // between prev and cur
	err       error  // of the last poll; nil when it succeeded
	downSince time.Time
	inFlight  bool // a poll is running
}

// Model is the bubbletea model of corvid top. Its methods are called by
// bubbletea's event loop, one at a time; it is not safe for concurrent
// use otherwise. The polls it starts run in tea.Cmds and end when Stop is
// called.
type Model struct {
	cfg     Config
	ctx     context.Context
	stop    context.CancelFunc
	servers []*serverState
	active  int  // the tab shown
	sortCol int  // index in SortColumns
	paused  bool // no polls, the screen frozen
	width   int  // of the terminal; 0 when unknown
	height  int
}

// New returns a model over cfg.Servers.
func New(cfg Config) *Model {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Fetch == nil {
		window := min(cfg.Interval/2, defaultWatchWindow)
		cfg.Fetch = func(ctx context.Context, addr string) (Sample, error) {
			return Poller{Addr: addr, WatchWindow: window}.Fetch(ctx)
		}
	}
	ctx, stop := context.WithCancel(context.Background())
	m := &Model{cfg: cfg, ctx: ctx, stop: stop}
	for _, a := range cfg.Servers {
		m.servers = append(m.servers, &serverState{addr: a})
	}
	return m
}

// Stop ends the polls still running.
func (m *Model) Stop() { m.stop() }

// Init polls every server and starts the ticks.
func (m *Model) Init() tea.Cmd {
	return tea.Batch(m.pollAll(), m.tick())
}

func (m *Model) tick() tea.Cmd {
	return tea.Tick(m.cfg.Interval, func(t time.Time) tea.Msg { return TickMsg(t) })
}

// pollAll starts a poll of each server that has none running.
func (m *Model) pollAll() tea.Cmd {
	var cmds []tea.Cmd
	for i, s := range m.servers {
		if s.inFlight {
			continue
		}
		s.inFlight = true
		i, addr := i, s.addr
		cmds = append(cmds, func() tea.Msg {
			sample, err := m.cfg.Fetch(m.ctx, addr)
			return SampleMsg{Server: i, Sample: sample, Err: err}
		})
	}
	return tea.Batch(cmds...)
}

// Update handles keys, ticks, poll results and the terminal's size.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		switch msg.String() {
		case "q", "ctrl+c", "esc":
			m.stop()
			return m, tea.Quit
		case "s":
			m.sortCol = (m.sortCol + 1) % len(SortColumns)
		case "p", " ":
			m.paused = !m.paused
			if !m.paused {
				return m, m.pollAll()
			}
		case "tab", "right", "l":
			if len(m.servers) > 0 {
				m.active = (m.active + 1) % len(m.servers)
			}
		case "shift+tab", "left", "h":
			if len(m.servers) > 0 {
				m.active = (m.active + len(m.servers) - 1) % len(m.servers)
			}
		}
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case TickMsg:
		if m.paused {
			return m, m.tick()
		}
		return m, tea.Batch(m.pollAll(), m.tick())
	case SampleMsg:
		if msg.Server < 0 || msg.Server >= len(m.servers) {
			return m, nil
		}
		s := m.servers[msg.Server]
		s.inFlight = false
		if m.paused {
			return m, nil // the screen stays as it was paused
		}
		if msg.Err != nil {
			if s.err == nil {
				s.downSince = time.Now()
			}
			s.err = msg.Err
			s.prev, s.rates = nil, nil // rates start again when it is back
			return m, nil
		}
		sample := msg.Sample
		s.err = nil
		s.prev, s.cur = s.cur, &sample
		if s.prev != nil {
			r := Diff(s.prev, s.cur)
			s.rates = &r
		}
	}
	return m, nil
}

var (
	titleStyle  = lipgloss.NewStyle().Bold(true)
	activeTab   = lipgloss.NewStyle().Bold(true).Reverse(true)
	downStyle   = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("9"))
	headerStyle = lipgloss.NewStyle().Bold(true).Underline(true)
	helpStyle   = lipgloss.NewStyle().Faint(true)
)

// View renders the active server.
func (m *Model) View() string {
	var b strings.Builder
	title := "corvid top"
	if len(m.servers) > 0 {
		title += "  " + m.servers[m.active].addr
	}
	title += fmt.Sprintf("  every %v  sort: %s", m.cfg.Interval, SortColumns[m.sortCol])
	b.WriteString(titleStyle.Render(title))
	if m.paused {
		b.WriteString("  " + downStyle.Render("PAUSED"))
	}
	b.WriteString("\n")
	for i, s := range m.servers {
		label := fmt.Sprintf("%d %s", i+1, s.addr)
		if s.err != nil {
			label += " DOWN"
		}
		if i == m.active {
			b.WriteString(activeTab.Render("[" + label + "]"))
		} else {
			b.WriteString(" " + label + " ")
		}
		b.WriteString(" ")
	}
	b.WriteString("\n\n")
	used := 4 // title, tabs, blank, help
	if len(m.servers) > 0 {
		used += m.writeServer(&b, m.servers[m.active])
	}
	if m.height > 0 {
		for ; used < m.height; used++ {
			b.WriteString("\n")
		}
	} else {
		b.WriteString("\n")
	}
	b.WriteString(helpStyle.Render("q quit  s sort  p pause  tab next server"))
	out := b.String()
	if m.width > 0 {
		lines := strings.Split(out, "\n")
		for i, l := range lines {
			lines[i] = ansi.Truncate(l, m.width, "")
		}
		out = strings.Join(lines, "\n")
	}
	return out
}

// writeServer writes the body for s and returns the number of lines.
func (m *Model) writeServer(b *strings.Builder, s *serverState) int {
	lines := 0
	line := func(format string, args ...any) {
		fmt.Fprintf(b, format+"\n", args...)
		lines++
	}
	if s.err != nil {
		line("%s  %s (down since %s)", downStyle.Render("DOWN"), s.err, s.downSince.Format("15:04:05"))
		if s.cur == nil {
			return lines
		}
		line("last seen:")
	}
	if s.cur == nil {
		line("connecting to %s ...", s.addr)
		return lines
	}
	c, r := s.cur, s.rates
	memPct := 0.0
	if limit := c.Int("limit_maxbytes"); limit > 0 {
		memPct = 100 * float64(c.Int("bytes")) / float64(limit)
	}
	line("server   version %s  up %s  connections %d/%d  items %d  memory %s / %s (%.1f%%)",
		printable(c.Stats["version"], 20), time.Duration(c.Int("uptime"))*time.Second,
		c.Int("curr_connections"), c.Int("max_connections"), c.Int("curr_items"),
		size(c.Int("bytes")), size(c.Int("limit_maxbytes")), memPct)
	if r == nil {
		line("ops/s    (after the next sample)")
		line("hits     all-time ratio %s  evictions %d", ratio(c.Int("get_hits"), c.Int("get_misses")), c.Int("evictions"))
	} else {
		var ops strings.Builder
		fmt.Fprintf(&ops, "ops/s    total %s ", num(r.Total()))
		for _, cmd := range Commands {
			fmt.Fprintf(&ops, " %s %s", cmd, num(r.Ops[cmd]))
		}
		line("%s", ops.String())
		now := "-"
		if hr, ok := r.HitRatio(); ok {
			now = fmt.Sprintf("%.1f%%", 100*hr)
		}
		line("hits     ratio %s (all-time %s)  hits/s %s  misses/s %s  evictions/s %s (total %d)  in %s/s  out %s/s",
			now, ratio(c.Int("get_hits"), c.Int("get_misses")), num(r.Hits), num(r.Misses),
			num(r.Evictions), c.Int("evictions"), size(uint64(r.BytesRead)), size(uint64(r.BytesWritten)))
	}
	line("")

	rows := ClassRows(c, r, m.sortCol)
	hot := c.HotKeys
	// Share the rows left between the two tables.
	avail := 1 << 30
	if m.height > 0 {
		avail = m.height - 4 - lines - 3 // two headers and a blank line
	}
	maxRows := len(rows)
	if maxHot := min(len(hot), avail/2); maxRows > avail-maxHot {
		maxRows = max(avail-maxHot, 0)
	}
	header := []string{"class", "chunk", "items", "pages", "memory", "evicted", "gets/s", "sets/s"}
	for i, h := range header {
		if h == SortColumns[m.sortCol] {
			header[i] = h + "*"
		}
	}
	line("%s", headerStyle.Render(fmt.Sprintf("%-6s %8s %10s %6s %9s %9s %9s %9s", toAny(header)...)))
	for _, row := range rows[:maxRows] {
		rates := "        -         -"
		if r != nil {
			rates = fmt.Sprintf("%9s %9s", num(row.Rates.Gets), num(row.Rates.Sets))
		}
		line("%-6d %8s %10d %6d %9s %9d %s", row.ID, size(row.ChunkSize), row.Items, row.Pages,
			size(row.Memory), row.Evicted, rates)
	}
	if maxRows < len(rows) {
		line("(%d more classes)", len(rows)-maxRows)
	}
	line("")
	src := c.HotKeySource
	if src == "" {
		src = "none: the server has neither stats hotkeys nor watch"
	}
	line("%s", headerStyle.Render(fmt.Sprintf("%-60s %12s", "hot keys ("+src+")", "requests/s")))
	n := len(hot)
	if m.height > 0 {
		n = min(n, max(m.height-4-lines, 0))
	}
	for _, k := range hot[:n] {
		line("%-60s %12s", printable(k.Key, 60), num(k.Rate))
	}
	return lines
}

func toAny(s []string) []any {
	a := make([]any, len(s))
	for i, v := range s {
		a[i] = v
	}
	return a
}

// printable returns s with what a terminal would act on (control bytes,
// invalid UTF-8) written as %XX, cut to at most width runes.
func printable(s string, width int) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(s) && n < width; {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 || r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '%' {
			for _, c := range []byte(s[i : i+max(size, 1)]) {
				fmt.Fprintf(&b, "%%%02X", c)
			}
			n += 3
		} else {
			b.WriteString(s[i : i+size])
			n++
		}
		i += max(size, 1)
	}
	return b.String()
}

// num formats a rate.
func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v == 0:
		return "0"
	default:
		return fmt.Sprintf("%.1f", v)
	}
}

// size formats a byte count as memcached-tool does, in powers of 1024.
func size(v uint64) string {
	const unit = 1024
	if v < unit {
		return fmt.Sprintf("%d B", v)
	}
	f, i := float64(v)/unit, 0
	for f >= unit && i < 4 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %cB", f, "KMGTP"[i])
}

// ratio formats hits/(hits+misses) as a percentage.
func ratio(hits, misses uint64) string {
	if hits+misses == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(hits)/float64(hits+misses))
}
