package admin

import (
	"strconv"
	"strings"
	"time"

	"github.com/corvidcache/corvid/proxy"
)

// MemcachedDashboard returns the dashboard of a memcached-protocol
// server: operations, hit ratio, memory, evictions and connections over
// time, its slab classes, and its hottest keys ("stats hotkeys", when
// stats serves that group).
func MemcachedDashboard(title string, stats StatsFunc) *Dashboard {
	return &Dashboard{
		Title: title,
		Charts: []Chart{
			{ID: "ops", Title: "Operations", Unit: "per second", Lines: []Line{
				{Label: "get", Key: "cmd_get", Rate: true},
				{Label: "set", Key: "cmd_set", Rate: true},
				{Label: "get miss", Key: "get_misses", Rate: true},
				{Label: "delete", Key: "deletes", Rate: true},
			}},
			{ID: "hits", Title: "Get hit ratio", Unit: "%", Lines: []Line{
				{Label: "hits", Key: "get_hits", Per: "get_lookups", Scale: 100},
			}},
			{ID: "memory", Title: "Memory", Unit: "bytes", Lines: []Line{
				{Label: "items", Key: "bytes"},
				{Label: "slab pages", Key: "total_malloced"},
				{Label: "limit", Key: "limit_maxbytes"},
			}},
			{ID: "evictions", Title: "Evictions and reclaims", Unit: "per second", Lines: []Line{
				{Label: "evicted", Key: "evictions", Rate: true},
				{Label: "expired reclaimed", Key: "reclaimed", Rate: true},
			}},
			{ID: "conns", Title: "Connections", Unit: "open, new per second", Lines: []Line{
				{Label: "open", Key: "curr_connections"},
				{Label: "new/s", Key: "total_connections", Rate: true},
			}},
			{ID: "net", Title: "Network", Unit: "bytes per second", Lines: []Line{
				{Label: "read", Key: "bytes_read", Rate: true},
				{Label: "written", Key: "bytes_written", Rate: true},
			}},
		},
		Sample: func() map[string]float64 {
			m := map[string]float64{}
			num := func(n, v string) {
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					m[n] = f
				}
			}
			stats("", num)
			stats("slabs", num)
			m["deletes"] = m["delete_hits"] + m["delete_misses"]
			// Hits and misses, not cmd_get, which connections add
			// up per batch of requests: a short interval could then
			// show more hits than gets.
			m["get_lookups"] = m["get_hits"] + m["get_misses"]
			return m
		},
		Tables: func() []Table { return []Table{slabTable(stats), hotKeyTable(stats)} },
	}
}

// slabTable is memcached-tool's view of the slab classes with pages.
func slabTable(stats StatsFunc) Table {
	t := Table{ID: "slabs", Title: "Slab classes",
		Columns: []string{"class", "chunk size", "pages", "items", "used chunks", "free chunks", "max age", "evicted", "evict time", "OOM", "get hits", "sets"}}
	items, slabs := map[int]map[string]string{}, map[int]map[string]string{}
	split := func(m map[int]map[string]string) func(n, v string) {
		return func(n, v string) {
			id, field, ok := strings.Cut(strings.TrimPrefix(n, "items:"), ":")
			class, err := strconv.Atoi(id)
			if !ok || err != nil {
				return
			}
			if m[class] == nil {
				m[class] = map[string]string{}
			}
			m[class][field] = v
		}
	}
	stats("items", split(items))
	stats("slabs", split(slabs))
	for _, id := range sortedKeys(slabs) {
		s, it := slabs[id], items[id]
		or0 := func(m map[string]string, k string) string {
			if v, ok := m[k]; ok {
				return v
			}
			return "0"
		}
		t.Rows = append(t.Rows, []string{strconv.Itoa(id), s["chunk_size"], s["total_pages"], or0(it, "number"),
			s["used_chunks"], s["free_chunks"], or0(it, "age") + "s", or0(it, "evicted"), or0(it, "evicted_time") + "s",
			or0(it, "outofmemory"), s["get_hits"], s["cmd_set"]})
	}
	return t
}

// hotKeyTable lists "stats hotkeys": the keys most requested and those
// moving the most bytes, by rank.
func hotKeyTable(stats StatsFunc) Table {
	t := Table{ID: "hotkeys", Title: "Hot keys", Columns: []string{"rank", "key", "requests/s", "key", "bytes/s"}}
	var byReq, byBytes [][2]string
	ok := stats("hotkeys", func(n, v string) {
		kind, _, _ := strings.Cut(n, ":")
		i := strings.LastIndexByte(v, ' ')
		if i < 0 {
			if n == "hotkeys" && v == "disabled" {
				t.Title = "Hot keys (off: -o hotkey_sample=0)"
			}
			return
		}
		switch kind {
		case "requests":
			byReq = append(byReq, [2]string{v[:i], v[i+1:]})
		case "bytes":
			byBytes = append(byBytes, [2]string{v[:i], v[i+1:]})
		}
	})
	if !ok {
		t.Title = "Hot keys (not tracked)"
	}
	for i := 0; i < max(len(byReq), len(byBytes)); i++ {
		row := []string{strconv.Itoa(i + 1), "", "", "", ""}
		if i < len(byReq) {
			row[1], row[2] = byReq[i][0], byReq[i][1]
		}
		if i < len(byBytes) {
			row[3], row[4] = byBytes[i][0], byBytes[i][1]
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// TwemproxyDashboard returns the dashboard of a corvid proxy: requests,
// errors and connections over time, each pool's counters and each
// server's health, ejections and queues.
func TwemproxyDashboard(title string, stats func() proxy.Stats) *Dashboard {
	return &Dashboard{
		Title: title,
		Charts: []Chart{
			{ID: "ops", Title: "Requests", Unit: "per second", Lines: []Line{
				{Label: "requests", Key: "requests", Rate: true},
				{Label: "responses", Key: "responses", Rate: true},
			}},
			{ID: "errors", Title: "Errors and ejections", Unit: "per second", Lines: []Line{
				{Label: "forward errors", Key: "forward_error", Rate: true},
				{Label: "server errors", Key: "server_err", Rate: true},
				{Label: "timeouts", Key: "server_timedout", Rate: true},
				{Label: "ejections", Key: "server_ejects", Rate: true},
			}},
			{ID: "conns", Title: "Client connections", Unit: "open, new per second", Lines: []Line{
				{Label: "open", Key: "curr_connections"},
				{Label: "new/s", Key: "total_connections", Rate: true},
			}},
			{ID: "health", Title: "Servers", Unit: "count", Lines: []Line{
				{Label: "up", Key: "servers_up"},
				{Label: "ejected", Key: "servers_ejected"},
			}},
			{ID: "net", Title: "Traffic to servers", Unit: "bytes per second", Lines: []Line{
				{Label: "requests", Key: "request_bytes", Rate: true},
				{Label: "responses", Key: "response_bytes", Rate: true},
			}},
		},
		Sample: func() map[string]float64 { return twemproxySample(stats()) },
		Tables: func() []Table { return twemproxyTables(stats()) },
	}
}

// twemproxySample is the proxy's dashboard figures in s: the pools'
// counters and the servers', summed, and how many servers are up.
func twemproxySample(s proxy.Stats) map[string]float64 {
	m := map[string]float64{"curr_connections": float64(s.CurrConnections), "total_connections": float64(s.TotalConnections)}
	for _, p := range s.Pools {
		for _, c := range p.Counters() {
			m[c.Name] += float64(c.Value)
		}
		for _, sv := range p.Servers {
			for _, c := range sv.Counters() {
				m[c.Name] += float64(c.Value)
			}
			if sv.Ejected {
				m["servers_ejected"]++
			} else {
				m["servers_up"]++
			}
		}
	}
	return m
}

// twemproxyTables is the proxy's servers and pools tables of s.
func twemproxyTables(s proxy.Stats) []Table {
	pools := Table{ID: "pools", Title: "Pools", Columns: []string{"pool", "clients", "client eof", "client err", "forward errors", "fragments", "server ejects"}}
	servers := Table{ID: "servers", Title: "Servers", Columns: []string{"pool", "server", "health", "last ejected", "connections",
		"requests", "responses", "in queue", "out queue", "errors", "timeouts", "eof"}}
	for _, p := range s.Pools {
		pools.Rows = append(pools.Rows, []string{p.Name, itoa(p.ClientConnections), itoa(p.ClientEOF), itoa(p.ClientErr),
			itoa(p.ForwardError), itoa(p.Fragments), itoa(p.ServerEjects)})
		for _, sv := range p.Servers {
			health, at := "up", "never"
			if sv.Ejected {
				health = "ejected"
			}
			if sv.ServerEjectedAt != 0 {
				at = time.UnixMicro(sv.ServerEjectedAt).UTC().Format(time.TimeOnly)
			}
			servers.Rows = append(servers.Rows, []string{p.Name, sv.Name, health, at, itoa(sv.ServerConnections),
				itoa(sv.Requests), itoa(sv.Responses), itoa(sv.InQueue), itoa(sv.OutQueue), itoa(sv.ServerErr),
				itoa(sv.ServerTimedout), itoa(sv.ServerEOF)})
		}
	}
	return []Table{servers, pools}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
