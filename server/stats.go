package server

import (
	"bytes"
	"crypto/tls"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/corvidcache/corvid/protocol"
	"github.com/corvidcache/corvid/storage"
)

// connStats are the counters a connection keeps without synchronisation and
// adds to the server's after each batch of requests.
type connStats struct {
	cmdGet, cmdTouch, cmdFlush   uint64
	cmdMeta                      uint64
	storeTooLarge, storeNoMemory uint64
	bytesRead, bytesWritten      uint64
	authCmds, authErrors         uint64
	connYields                   uint64
}

// globalStats are the server-wide counters memcached keeps per thread.
type globalStats struct {
	cmdGet, cmdTouch, cmdFlush   atomic.Uint64
	cmdMeta                      atomic.Uint64
	storeTooLarge, storeNoMemory atomic.Uint64
	bytesRead, bytesWritten      atomic.Uint64
	totalConns, rejectedConns    atomic.Uint64
	listenDisabled               atomic.Uint64 // listen_disabled_num
	timeListenDisabled           atomic.Uint64 // time_in_listen_disabled_us
	idleKicks                    atomic.Uint64
	authCmds, authErrors         atomic.Uint64
	connYields                   atomic.Uint64
}

// add moves the counts of cs into g and zeroes cs.
func (g *globalStats) add(cs *connStats) {
	addNonZero := func(dst *atomic.Uint64, v uint64) {
		if v != 0 {
			dst.Add(v)
		}
	}
	addNonZero(&g.cmdGet, cs.cmdGet)
	addNonZero(&g.cmdTouch, cs.cmdTouch)
	addNonZero(&g.cmdFlush, cs.cmdFlush)
	addNonZero(&g.cmdMeta, cs.cmdMeta)
	addNonZero(&g.storeTooLarge, cs.storeTooLarge)
	addNonZero(&g.storeNoMemory, cs.storeNoMemory)
	addNonZero(&g.bytesRead, cs.bytesRead)
	addNonZero(&g.bytesWritten, cs.bytesWritten)
	addNonZero(&g.authCmds, cs.authCmds)
	addNonZero(&g.authErrors, cs.authErrors)
	addNonZero(&g.connYields, cs.connYields)
	*cs = connStats{}
}

// reservedFDsPerThread is what memcached reports in reserved_fds for each
// worker thread: the descriptors of its event base and notify pipe.
const reservedFDsPerThread = 5

// startConns is the number of connections memcached makes when it starts
// listening: one per listening socket, and one per worker thread for each
// UDP socket. They count in its curr_connections (less one),
// connection_structures and, until a "stats reset", total_connections.
func (s *Server) startConns() int { return s.listenConns }

// countStartConns returns startConns for the listeners New opened.
// memcached opens two sockets for an address without a host, one IPv4
// and one IPv6, where Go opens one dual-stack socket (bound to [::]).
func (s *Server) countStartConns() int {
	n := len(s.listeners) + len(s.udp)*s.cfg.Threads
	for i, addr := range s.cfg.TCPAddrs {
		if splitsInTwo(addr, s.listeners[i].Addr()) {
			n++
		}
	}
	for i, addr := range s.cfg.UDPAddrs {
		if splitsInTwo(addr, s.udp[i].pc.LocalAddr()) {
			n += s.cfg.Threads
		}
	}
	return n
}

// splitsInTwo reports whether memcached listens on two sockets where Go
// listens on bound, given addr: a wildcard address (no host) that Go
// serves dual-stack.
func splitsInTwo(addr string, bound net.Addr) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host != "" {
		return false
	}
	var ip net.IP
	switch a := bound.(type) {
	case *net.TCPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	}
	return ip != nil && ip.IsUnspecified() && ip.To4() == nil
}

// reset zeroes the counters "stats reset" clears.
func (g *globalStats) reset() {
	for _, v := range []*atomic.Uint64{&g.cmdGet, &g.cmdTouch, &g.cmdFlush, &g.cmdMeta,
		&g.storeTooLarge, &g.storeNoMemory, &g.bytesRead, &g.bytesWritten,
		&g.totalConns, &g.rejectedConns, &g.listenDisabled, &g.timeListenDisabled, &g.idleKicks, &g.authCmds, &g.authErrors, &g.connYields} {
		v.Store(0)
	}
}

// statWriter appends "STAT name value" lines, or with binary set, binary
// protocol stat responses echoing opaque; with fn set it hands each stat
// to fn instead.
type statWriter struct {
	buf    []byte
	binary bool
	opaque uint32
	fn     func(name, value string)
}

func (w *statWriter) str(name, v string) {
	if w.fn != nil {
		w.fn(name, v)
		return
	}
	if w.binary {
		w.buf = protocol.AppendBinaryStat(w.buf, name, v, w.opaque)
		return
	}
	w.buf = append(w.buf, "STAT "...)
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, ' ')
	w.buf = append(w.buf, v...)
	w.buf = append(w.buf, '\r', '\n')
}

func (w *statWriter) u(name string, v uint64) { w.str(name, strconv.FormatUint(v, 10)) }
func (w *statWriter) i(name string, v int64)  { w.str(name, strconv.FormatInt(v, 10)) }
func (w *statWriter) b(name string, v bool) {
	if v {
		w.str(name, "1")
	} else {
		w.str(name, "0")
	}
}
func (w *statWriter) yesno(name string, v bool) {
	if v {
		w.str(name, "yes")
	} else {
		w.str(name, "no")
	}
}

// Stats calls fn with each statistic of a stats group, by name and value
// exactly as the stats command prints them: group is "" for the general
// stats, or "settings", "items", "slabs" or "hotkeys". It reports false
// for another group. Stats reads the same counters and snapshot as the
// stats command, so it costs the data path no more than "stats" does;
// it is safe for concurrent use.
func (s *Server) Stats(group string, fn func(name, value string)) bool {
	w := statWriter{fn: fn}
	switch group {
	case "":
		s.writeGeneralStats(&w)
	case "settings":
		s.writeSettings(&w)
	case "items":
		s.writeItems(&w)
	case "slabs":
		s.writeSlabs(&w)
	case "hotkeys":
		s.writeHotKeys(&w)
	default:
		return false
	}
	return true
}

// writeSizes answers "stats sizes" (the items by size, in 32-byte steps,
// when the histogram is on), "stats sizes_enable" and "stats
// sizes_disable" as memcached does.
func (s *Server) writeSizes(w *statWriter, group string) {
	switch group {
	case "sizes_enable":
		if err := s.cache.EnableSizes(); err != nil {
			w.str("sizes_status", "error")
			w.str("sizes_error", "cas_support_disabled")
			return
		}
		w.str("sizes_status", "enabled")
	case "sizes_disable":
		s.cache.DisableSizes()
		w.str("sizes_status", "disabled")
	default:
		if !s.cache.Sizes(func(size int, n uint32) { w.u(strconv.Itoa(size), uint64(n)) }) {
			w.str("sizes_status", "disabled")
		}
	}
}

func (c *conn) statsCommand(req *protocol.Request) {
	if len(req.Args) == 0 {
		w := statWriter{buf: c.wbuf}
		c.srv.writeGeneralStats(&w)
		c.wbuf = append(w.buf, "END\r\n"...)
		return
	}
	w := statWriter{buf: c.wbuf}
	switch string(req.Args[0]) {
	case "settings":
		c.srv.writeSettings(&w)
	case "items":
		c.srv.writeItems(&w)
	case "slabs":
		c.srv.writeSlabs(&w)
	case "sizes":
		c.srv.writeSizes(&w, "sizes")
	case "sizes_enable", "sizes_disable":
		// memcached's reply has no END.
		c.srv.writeSizes(&w, string(req.Args[0]))
		c.wbuf = w.buf
		return
	case "conns":
		c.srv.writeConns(&w)
	case "reset":
		c.srv.stats.reset()
		c.srv.cache.ResetStats()
		c.srv.detail.reset()
		c.srv.hot.reset()
		c.reply("RESET")
		return
	case "detail":
		c.statsDetail(req)
		return
	case "hotkeys":
		c.srv.writeHotKeys(&w)
	case "cachedump":
		c.cachedump(req.Args[1:])
		return
	default:
		c.reply("ERROR")
		return
	}
	c.wbuf = append(w.buf, "END\r\n"...)
}

// cachedumpLimit bounds a "stats cachedump" reply, as memcached's.
const cachedumpLimit = 2 << 20

// cachedump answers "stats cachedump <class> <limit>" as memcached does:
// an "ITEM <key> [<value bytes> b; <expiry unix time> s]" line per item of
// the class's COLD LRU, most recent first, at most limit of them (0: as
// many as fit), the reply at most cachedumpLimit bytes.
func (c *conn) cachedump(args [][]byte) {
	if c.srv.cfg.DisableDumping {
		c.reply("CLIENT_ERROR stats cachedump not allowed")
		return
	}
	if len(args) < 2 {
		c.reply("CLIENT_ERROR bad command line")
		return
	}
	id, ok1 := protocol.ParseUint32(args[0])
	limit, ok2 := protocol.ParseUint32(args[1])
	if !ok1 || !ok2 {
		c.reply("CLIENT_ERROR bad command line format")
		return
	}
	if id > storage.MaxClassID {
		c.reply("CLIENT_ERROR Illegal slab id")
		return
	}
	start := len(c.wbuf)
	shown := uint32(0)
	// The shortest line, "ITEM k [0 b; 0 s]\r\n", is 18 bytes and the key.
	c.srv.cache.DumpCold(int(id), int(limit), 17, cachedumpLimit, func(it *storage.DumpItem) bool {
		if limit != 0 && shown >= limit {
			return false
		}
		n := len(c.wbuf)
		c.wbuf = append(c.wbuf, "ITEM "...)
		c.wbuf = append(c.wbuf, it.Key...)
		c.wbuf = append(c.wbuf, " ["...)
		c.wbuf = strconv.AppendInt(c.wbuf, int64(it.ValueLen), 10)
		c.wbuf = append(c.wbuf, " b; "...)
		c.wbuf = strconv.AppendInt(c.wbuf, it.Exptime, 10)
		c.wbuf = append(c.wbuf, " s]\r\n"...)
		if len(c.wbuf)-start+len("END\r\n") > cachedumpLimit {
			c.wbuf = c.wbuf[:n]
			return false
		}
		shown++
		return true
	})
	c.wbuf = append(c.wbuf, "END\r\n"...)
}

func (c *conn) statsDetail(req *protocol.Request) {
	if len(req.Args) < 2 {
		c.reply("CLIENT_ERROR usage: stats detail on|off|dump")
		return
	}
	switch string(req.Args[1]) {
	case "on":
		c.srv.detail.enabled.Store(true)
		c.reply("OK")
	case "off":
		c.srv.detail.enabled.Store(false)
		c.reply("OK")
	case "dump":
		c.wbuf = c.srv.detail.appendDump(c.wbuf)
		c.wbuf = append(c.wbuf, "END\r\n"...)
	default:
		c.reply("CLIENT_ERROR usage: stats detail on|off|dump")
	}
}

func (s *Server) writeGeneralStats(w *statWriter) {
	var st storage.Stats
	s.cache.ReadStats(&st)
	var hits, sets, delHits, incrHits, decrHits, casHits, casBad, touchHits uint64
	for i := range st.Classes {
		cl := &st.Classes[i]
		hits += cl.GetHits
		sets += cl.CmdSet
		delHits += cl.DeleteHits
		incrHits += cl.IncrHits
		decrHits += cl.DecrHits
		casHits += cl.CasHits
		casBad += cl.CasBadval
		touchHits += cl.TouchHits
	}
	user, system := processTimes()
	g := &s.stats
	now := s.cache.CurrentTime()
	w.i("pid", int64(os.Getpid()))
	w.i("uptime", s.cache.Uptime())
	w.i("time", now)
	w.str("version", Version)
	w.i("pointer_size", 64)
	w.str("rusage_user", formatMicros(user))
	w.str("rusage_system", formatMicros(system))
	w.i("max_connections", int64(s.cfg.MaxConns))
	// memcached counts its listening and UDP connections, less one.
	conns := s.currConns()
	structs := conns + s.startConns()
	w.i("curr_connections", int64(max(structs-1, 0)))
	w.u("total_connections", g.totalConns.Load())
	if !s.cfg.NoMaxConnsFast {
		w.u("rejected_connections", g.rejectedConns.Load())
	}
	w.i("connection_structures", int64(structs))
	w.u("response_obj_oom", s.respOOM.Load())
	curr := conns + len(s.udp)
	w.i("response_obj_count", int64(curr))
	w.i("response_obj_bytes", int64(curr)*readBufSize)
	var spare int64
	for _, l := range s.loops {
		spare += l.spareReadBytes()
	}
	w.i("read_buf_count", s.rbufs.count.Load())
	w.i("read_buf_bytes", s.rbufs.bytes.Load())
	w.i("read_buf_bytes_free", spare)
	w.u("read_buf_oom", s.rbufs.oom.Load())
	w.i("write_buf_bytes", s.wbufs.bytes.Load())
	w.u("write_buf_oom", s.wbufs.oom.Load())
	w.u("reserved_fds", uint64(reservedFDsPerThread*s.cfg.Threads))
	w.u("cmd_get", g.cmdGet.Load())
	w.u("cmd_set", sets)
	w.u("cmd_flush", g.cmdFlush.Load())
	w.u("cmd_touch", g.cmdTouch.Load())
	w.u("cmd_meta", g.cmdMeta.Load())
	w.u("get_hits", hits)
	w.u("get_misses", st.GetMisses)
	w.u("get_expired", st.GetExpired)
	w.u("get_flushed", st.GetFlushed)
	w.u("delete_misses", st.DeleteMisses)
	w.u("delete_hits", delHits)
	w.u("incr_misses", st.IncrMisses)
	w.u("incr_hits", incrHits)
	w.u("decr_misses", st.DecrMisses)
	w.u("decr_hits", decrHits)
	w.u("cas_misses", st.CasMisses)
	w.u("cas_hits", casHits)
	w.u("cas_badval", casBad)
	w.u("touch_hits", touchHits)
	w.u("touch_misses", st.TouchMisses)
	w.u("store_too_large", g.storeTooLarge.Load())
	w.u("store_no_memory", g.storeNoMemory.Load())
	w.u("auth_cmds", g.authCmds.Load())
	w.u("auth_errors", g.authErrors.Load())
	w.u("bytes_read", g.bytesRead.Load())
	w.u("bytes_written", g.bytesWritten.Load())
	w.u("limit_maxbytes", st.LimitMaxbytes)
	w.b("accepting_conns", s.accepting())
	w.u("listen_disabled_num", g.listenDisabled.Load())
	w.u("time_in_listen_disabled_us", g.timeListenDisabled.Load())
	w.i("threads", int64(s.cfg.Threads))
	w.u("conn_yields", g.connYields.Load())
	if s.cfg.IdleTimeout > 0 {
		w.u("idle_kicks", g.idleKicks.Load())
	}
	w.u("hash_power_level", st.HashPowerLevel)
	w.u("hash_bytes", st.HashBytes)
	w.b("hash_is_expanding", st.HashIsExpanding)
	w.u("slab_reassign_rescues", st.SlabReassignRescues)
	w.u("slab_reassign_chunk_rescues", st.SlabReassignChunkRescues)
	w.u("slab_reassign_evictions_nomem", st.SlabReassignEvictionsNomem)
	w.u("slab_reassign_inline_reclaim", 0)
	w.u("slab_reassign_busy_items", st.SlabReassignBusyItems)
	w.u("slab_reassign_busy_deletes", 0)
	w.b("slab_reassign_running", st.SlabReassignRunning)
	w.u("slabs_moved", st.SlabsMoved)
	// memcached lists the crawler's figures while it is enabled and the
	// maintainer's when it runs.
	if s.cache.CrawlerSettings().Enabled {
		w.b("lru_crawler_running", st.LRUCrawlerRunning)
		w.u("lru_crawler_starts", st.LRUCrawlerStarts)
	}
	if s.cache.LRUSettings().Maintainer {
		w.u("lru_maintainer_juggles", st.LRUMaintainerJuggles)
	}
	w.u("malloc_fails", st.MallocFails)
	w.u("log_worker_dropped", 0)
	w.u("log_worker_written", s.watch.written.Load())
	w.u("log_watcher_skipped", s.watch.skipped.Load())
	w.u("log_watcher_sent", s.watch.sent.Load())
	w.i("log_watchers", int64(s.watch.count()))
	s.writeTLSStats(w)
	w.u("unexpected_napi_ids", 0)
	w.u("round_robin_fallback", 0)
	w.u("bytes", st.Bytes)
	w.u("curr_items", st.CurrItems)
	w.u("total_items", st.TotalItems)
	w.u("slab_global_page_pool", st.SlabGlobalPagePool)
	w.u("expired_unfetched", st.ExpiredUnfetched)
	w.u("evicted_unfetched", st.EvictedUnfetched)
	maintainer := s.cache.LRUSettings().Maintainer
	if maintainer {
		w.u("evicted_active", st.EvictedActive)
	}
	w.u("evictions", st.Evictions)
	w.u("slab_evictions", st.SlabEvictions)
	w.u("reclaimed", st.Reclaimed)
	w.u("crawler_reclaimed", st.CrawlerReclaimed)
	w.u("crawler_items_checked", st.CrawlerItemsChecked)
	var reflocked, toCold, toWarm, within, reclaims uint64
	for i := range st.Classes {
		cl := &st.Classes[i]
		reflocked += cl.LRUTailReflocked
		toCold += cl.MovesToCold
		toWarm += cl.MovesToWarm
		within += cl.MovesWithinLRU
		reclaims += cl.DirectReclaims
	}
	w.u("lrutail_reflocked", reflocked)
	if maintainer {
		// memcached reports these only with its LRU maintainer.
		w.u("moves_to_cold", toCold)
		w.u("moves_to_warm", toWarm)
		w.u("moves_within_lru", within)
		w.u("direct_reclaims", reclaims)
		w.u("lru_bumps_dropped", 0)
	}
	if k := s.klog; k != nil {
		// twemcache's command log counters.
		w.u("klog_logged", k.logged.Load())
		w.u("klog_discarded", k.discarded.Load())
		w.u("klog_skipped", k.skipped.Load())
	}
}

// formatMicros formats a time of us microseconds as memcached's rusage
// stats: seconds.microseconds.
func formatMicros(us int64) string {
	frac := strconv.FormatInt(us%1e6, 10)
	for len(frac) < 6 {
		frac = "0" + frac
	}
	return strconv.FormatInt(us/1e6, 10) + "." + frac
}

func (s *Server) writeSettings(w *statWriter) {
	cfg := &s.cfg
	var st storage.Stats
	s.cache.ReadStats(&st)
	sc := cfg.Storage
	w.u("maxbytes", st.LimitMaxbytes)
	w.i("maxconns", int64(cfg.MaxConns))
	w.i("tcpport", int64(cfg.TCPPort))
	w.i("udpport", int64(cfg.UDPPort))
	w.str("inter", cfg.Interface)
	w.i("verbosity", int64(s.verbosity.Load()))
	w.i("oldest", 0)
	if s.cache.Eviction() == storage.EvictNone {
		w.str("evictions", "off")
	} else {
		w.str("evictions", "on")
	}
	if cfg.UnixPath != "" {
		w.str("domain_socket", cfg.UnixPath)
	} else {
		w.str("domain_socket", "NULL")
	}
	w.str("umask", strconv.FormatUint(uint64(cfg.UnixMask), 8))
	w.yesno("shutdown_command", cfg.EnableShutdown)
	w.str("growth_factor", strconv.FormatFloat(orFloat(sc.GrowthFactor, 1.25), 'f', 2, 64))
	w.i("chunk_size", int64(orInt(sc.ChunkSizeMin, 48)))
	w.i("num_threads", int64(cfg.Threads))
	w.i("num_threads_per_udp", int64(cfg.Threads))
	w.str("stat_key_prefix", string(cfg.PrefixDelimiter))
	w.yesno("detail_enabled", s.detail.enabled.Load())
	w.i("reqs_per_event", int64(cfg.ReqsPerEvent))
	w.yesno("cas_enabled", !sc.DisableCAS)
	backlog := int64(cfg.Backlog)
	if cfg.Backlog == ZeroBacklog {
		backlog = 0
	}
	w.i("tcp_backlog", backlog)
	w.str("binding_protocol", cfg.Protocol.String())
	w.yesno("auth_enabled_sasl", cfg.SASL)
	// memcached shows the auth file's name when it has one.
	if cfg.AuthFile != "" {
		w.str("auth_enabled_ascii", cfg.AuthFile)
	} else {
		w.str("auth_enabled_ascii", "no")
	}
	w.i("item_size_max", int64(orInt(sc.ItemSizeMax, 1<<20)))
	w.yesno("maxconns_fast", !cfg.NoMaxConnsFast)
	w.i("hashpower_init", int64(sc.HashPowerInit))
	w.yesno("slab_reassign", !sc.NoSlabReassign)
	w.i("slab_automove", int64(s.cache.Automove()))
	w.str("slab_automove_ratio", strconv.FormatFloat(s.cache.AutomoveRatio(), 'f', 2, 64))
	w.i("slab_automove_window", int64(orInt(sc.SlabAutomoveWindow, 30)))
	w.i("slab_chunk_max", int64(orInt(sc.SlabChunkMax, 512<<10)))
	crawler := s.cache.CrawlerSettings()
	w.yesno("lru_crawler", crawler.Enabled)
	w.i("lru_crawler_sleep", int64(crawler.Sleep/time.Microsecond))
	w.u("lru_crawler_tocrawl", uint64(crawler.ToCrawl))
	w.i("tail_repair_time", int64(cfg.TailRepairTime/time.Second))
	w.yesno("flush_enabled", !cfg.DisableFlushAll)
	w.yesno("dump_enabled", !cfg.DisableDumping)
	w.str("hash_algorithm", "maphash")
	lru := s.cache.LRUSettings()
	w.yesno("lru_maintainer_thread", lru.Maintainer)
	w.yesno("lru_segmented", lru.Segmented)
	w.u("hot_lru_pct", uint64(lru.HotPct))
	w.u("warm_lru_pct", uint64(lru.WarmPct))
	w.str("hot_max_factor", strconv.FormatFloat(lru.HotMaxFactor, 'f', 2, 64))
	w.str("warm_max_factor", strconv.FormatFloat(lru.WarmMaxFactor, 'f', 2, 64))
	w.yesno("temp_lru", lru.TempLRU)
	w.i("temporary_ttl", int64(uint32(lru.TemporaryTTL))) // memcached's %u
	w.i("idle_timeout", int64(cfg.IdleTimeout/time.Second))
	w.i("watcher_logbuf_size", int64(max(orInt(cfg.WatcherLogBufSize, defaultWatcherBuf), 0)))
	w.i("worker_logbuf_size", int64(max(orInt(cfg.WorkerLogBufSize, defaultWorkerBuf), 0)))
	w.i("read_buf_mem_limit", s.rbufs.limit)
	w.yesno("track_sizes", s.cache.Sizes(func(int, uint32) {}))
	w.str("inline_ascii_response", "no") // dead in memcached 1.6 too
	w.i("write_buf_mem_limit", s.wbufs.limit)
	freeRatio := orFloat(sc.SlabAutomoveFreeRatio, 0.01)
	if cfg.SlabAutomoveFreeRatio != nil {
		freeRatio = *cfg.SlabAutomoveFreeRatio
	}
	w.str("slab_automove_freeratio", strconv.FormatFloat(freeRatio, 'f', 3, 64))
	s.writeTLSSettings(w)
	w.str("memory_file", orString(cfg.SnapshotFile, "(null)"))
	w.str("eviction", s.cache.Eviction().String())
}

func orString(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func orInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func orFloat(v, def float64) float64 {
	if v == 0 {
		return def
	}
	return v
}

func (s *Server) writeItems(w *statWriter) {
	var st storage.Stats
	s.cache.ReadStats(&st)
	// memcached lists the segmented LRU's figures only when its
	// maintainer runs, and number_temp only with the TEMP LRU on.
	lru := s.cache.LRUSettings()
	for i := range st.Classes {
		cl := &st.Classes[i]
		// memcached lists only the classes that hold items (item_stats):
		// not the classes of chained items' headers and last chunks, nor
		// one whose items were all evicted.
		if cl.Number == 0 {
			continue
		}
		p := "items:" + strconv.Itoa(cl.ID) + ":"
		w.u(p+"number", cl.Number)
		if lru.Maintainer {
			w.u(p+"number_hot", cl.NumberHot)
			w.u(p+"number_warm", cl.NumberWarm)
			w.u(p+"number_cold", cl.NumberCold)
			if lru.TempLRU {
				w.u(p+"number_temp", cl.NumberTemp)
			}
			w.u(p+"age_hot", cl.AgeHot)
			w.u(p+"age_warm", cl.AgeWarm)
		}
		w.u(p+"age", cl.Age)
		w.u(p+"mem_requested", cl.MemRequested)
		w.u(p+"evicted", cl.Evicted)
		w.u(p+"evicted_nonzero", cl.EvictedNonzero)
		w.u(p+"evicted_time", cl.EvictedTime)
		w.u(p+"outofmemory", cl.OutOfMemory)
		w.u(p+"tailrepairs", cl.TailRepairs)
		w.u(p+"reclaimed", cl.Reclaimed)
		w.u(p+"expired_unfetched", cl.ExpiredUnfetched)
		w.u(p+"evicted_unfetched", cl.EvictedUnfetched)
		if lru.Maintainer {
			w.u(p+"evicted_active", cl.EvictedActive)
		}
		w.u(p+"crawler_reclaimed", cl.CrawlerReclaimed)
		w.u(p+"crawler_items_checked", cl.CrawlerItemsChecked)
		w.u(p+"lrutail_reflocked", cl.LRUTailReflocked)
		if lru.Maintainer {
			w.u(p+"moves_to_cold", cl.MovesToCold)
			w.u(p+"moves_to_warm", cl.MovesToWarm)
			w.u(p+"moves_within_lru", cl.MovesWithinLRU)
			w.u(p+"direct_reclaims", cl.DirectReclaims)
			w.u(p+"hits_to_hot", cl.HitsToHot)
			w.u(p+"hits_to_warm", cl.HitsToWarm)
			w.u(p+"hits_to_cold", cl.HitsToCold)
			w.u(p+"hits_to_temp", cl.HitsToTemp)
		}
	}
}

func (s *Server) writeSlabs(w *statWriter) {
	var st storage.Stats
	s.cache.ReadStats(&st)
	for i := range st.Classes {
		cl := &st.Classes[i]
		if cl.TotalPages == 0 {
			continue
		}
		p := strconv.Itoa(cl.ID) + ":"
		w.i(p+"chunk_size", int64(cl.ChunkSize))
		w.i(p+"chunks_per_page", int64(cl.ChunksPerPage))
		w.i(p+"total_pages", int64(cl.TotalPages))
		w.i(p+"total_chunks", int64(cl.TotalChunks))
		w.i(p+"used_chunks", int64(cl.UsedChunks))
		w.i(p+"free_chunks", int64(cl.FreeChunks))
		w.i(p+"free_chunks_end", int64(cl.FreeChunksEnd))
		w.u(p+"get_hits", cl.GetHits)
		w.u(p+"cmd_set", cl.CmdSet)
		w.u(p+"delete_hits", cl.DeleteHits)
		w.u(p+"incr_hits", cl.IncrHits)
		w.u(p+"decr_hits", cl.DecrHits)
		w.u(p+"cas_hits", cl.CasHits)
		w.u(p+"cas_badval", cl.CasBadval)
		w.u(p+"touch_hits", cl.TouchHits)
	}
	w.i("active_slabs", int64(st.ActiveSlabs))
	w.u("total_malloced", st.TotalMalloced)
}

// Connection states, as "stats conns" names them (memcached's conn_states).
const (
	connNewCmd   uint32 = iota // accepted, nothing read yet
	connRead                   // waiting for a request
	connParseCmd               // handling requests
	connNread                  // reading a request's value
	connSwallow                // discarding a refused value
	connMwrite                 // waiting for the socket to take replies
	connWatch                  // streaming log lines to a watcher
)

var connStateNames = [...]string{
	connNewCmd:   "conn_new_cmd",
	connRead:     "conn_read",
	connParseCmd: "conn_parse_cmd",
	connNread:    "conn_nread",
	connSwallow:  "conn_swallow",
	connMwrite:   "conn_mwrite",
	connWatch:    "conn_watch",
}

// setWaitState records what the connection waits for before it reads
// more: the value of a request whose line (or binary header) it has, the
// rest of a value it discards, or a request. Whether unread input is a
// whole line or header is judged by the connection's protocol: a text
// client's stray magic byte, or a binary client's newline, does not make
// a partial request look like a value being read. A connection that has read
// nothing yet stays connNewCmd, as in memcached.
func (c *conn) setWaitState() {
	unread := c.rbuf[c.r:c.w]
	st := connRead
	switch {
	case c.in != nil:
		st = connNread
	case c.swallow > 0:
		st = connSwallow
	case len(unread) == 0:
		if c.state.Load() == connNewCmd {
			return
		}
	case c.waitsBinary(unread[0]):
		if len(unread) >= protocol.BinaryHeaderLen {
			st = connNread
		}
	case bytes.IndexByte(unread, '\n') >= 0:
		st = connNread
	}
	c.state.Store(st)
}

// waitsBinary reports whether the partial request that starts with first
// is binary: the protocol the connection speaks, or, before its first
// request has decided it, the one that byte will decide (as
// handleRequest does).
func (c *conn) waitsBinary(first byte) bool {
	p := c.proto
	if p == ProtoAuto {
		p = c.srv.cfg.Protocol
	}
	if p == ProtoAuto {
		return first == protocol.BinaryRequestMagic
	}
	return p == ProtoBinary
}

// socketFD returns the descriptor of a socket, or -1.
func socketFD(sock any) int {
	if tc, ok := sock.(*tls.Conn); ok {
		sock = tc.NetConn()
	}
	fd := -1
	if sc, ok := sock.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			rc.Control(func(d uintptr) { fd = int(d) })
		}
	}
	return fd
}

// connEntry is one socket of "stats conns".
type connEntry struct {
	fd     int
	addr   string
	listen string // the local address of a client's connection
	udp    bool
	state  string
	since  int64
}

// writeConns answers "stats conns" as memcached: every listening socket,
// UDP socket and client connection, by descriptor (the cfd of watchers'
// lines), with its address, the address it was accepted on, its state and
// the seconds since its last command.
func (s *Server) writeConns(w *statWriter) {
	now := s.cache.CurrentTime()
	var entries []connEntry
	for _, ln := range s.listeners {
		entries = append(entries, connEntry{fd: socketFD(ln), addr: addrString(ln.Addr()),
			state: "conn_listening", since: s.cache.Uptime()})
	}
	entries = s.appendUDPConns(entries, now)
	s.mu.Lock()
	// c.nc is read under s.mu: a watcher leaving an event loop gets a
	// new one.
	type connInfo struct {
		c  *conn
		nc net.Conn
	}
	conns := make([]connInfo, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, connInfo{c, c.nc})
	}
	s.mu.Unlock()
	for _, ci := range conns {
		c := ci.c
		fd := int(c.sfd.Load())
		if fd == 0 {
			fd = socketFD(ci.nc)
		}
		if fd < 0 {
			// Closed, and about to leave s.conns: memcached no
			// longer lists a connection it has closed.
			continue
		}
		st := c.state.Load()
		if int(st) >= len(connStateNames) {
			st = connParseCmd
		}
		e := connEntry{fd: fd, addr: addrString(ci.nc.RemoteAddr()), listen: addrString(ci.nc.LocalAddr()),
			state: connStateNames[st], since: now - c.lastCmd.Load()}
		if ci.nc.RemoteAddr().Network() == "unix" {
			// memcached does not record a Unix client's address and
			// prints the empty one so.
			e.addr = "?:<AF 0>"
		}
		entries = append(entries, e)
	}
	slices.SortStableFunc(entries, func(a, b connEntry) int { return a.fd - b.fd })
	for _, e := range entries {
		p := strconv.Itoa(e.fd) + ":"
		if e.udp {
			w.str(p+"UDP", "UDP")
		}
		w.str(p+"addr", e.addr)
		if e.listen != "" {
			w.str(p+"listen_addr", e.listen)
		}
		w.str(p+"state", e.state)
		w.i(p+"secs_since_last_cmd", e.since)
	}
}

func addrString(a interface {
	Network() string
	String() string
}) string {
	return a.Network() + ":" + a.String()
}

// Per-prefix statistics ("stats detail"), kept only while enabled.
const (
	opGet = iota
	opSet
	opDelete
)

type prefixStats struct {
	enabled atomic.Bool
	delim   byte
	mu      sync.Mutex // guards m
	m       map[string]*prefixCounts
}

type prefixCounts struct{ gets, hits, sets, dels uint64 }

// maxPrefixes bounds the table so that random keys cannot grow it forever.
const maxPrefixes = 1 << 16

func (p *prefixStats) record(key []byte, op int, hit bool) {
	i := bytes.IndexByte(key, p.delim)
	if i < 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	pc := p.m[string(key[:i])]
	if pc == nil {
		if len(p.m) >= maxPrefixes {
			return
		}
		if p.m == nil {
			p.m = make(map[string]*prefixCounts)
		}
		pc = &prefixCounts{}
		p.m[string(key[:i])] = pc
	}
	switch op {
	case opGet:
		pc.gets++
		if hit {
			pc.hits++
		}
	case opSet:
		pc.sets++
	case opDelete:
		pc.dels++
	}
}

func (p *prefixStats) reset() {
	p.mu.Lock()
	p.m = nil
	p.mu.Unlock()
}

// appendDump writes memcached's "PREFIX name get N hit N set N del N"
// lines. The table is copied under the lock and sorted and formatted
// after: every request records into it while detail is on, and a full
// table makes a reply of several megabytes.
func (p *prefixStats) appendDump(dst []byte) []byte {
	type entry struct {
		name string
		prefixCounts
	}
	p.mu.Lock()
	entries := make([]entry, 0, len(p.m))
	size := 0
	for k, pc := range p.m {
		entries = append(entries, entry{k, *pc})
		size += len(k)
	}
	p.mu.Unlock()
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	// A line is its name and at most 4*20 digits and 30 other bytes.
	dst = slices.Grow(dst, size+len(entries)*110)
	for _, e := range entries {
		dst = append(dst, "PREFIX "...)
		dst = append(dst, e.name...)
		dst = append(dst, " get "...)
		dst = strconv.AppendUint(dst, e.gets, 10)
		dst = append(dst, " hit "...)
		dst = strconv.AppendUint(dst, e.hits, 10)
		dst = append(dst, " set "...)
		dst = strconv.AppendUint(dst, e.sets, 10)
		dst = append(dst, " del "...)
		dst = strconv.AppendUint(dst, e.dels, 10)
		dst = append(dst, '\r', '\n')
	}
	return dst
}
