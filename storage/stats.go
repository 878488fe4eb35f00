package storage

// ReadStats fills s with a snapshot of the cache's counters and state,
// reusing s.Classes. Global figures are sums over the classes, as in
// memcached. Items over slab_chunk_max are counted in the largest class,
// as memcached counts them; their chunks are counted in the classes they
// come from (chain.go). It is safe for concurrent use.
func (c *Cache) ReadStats(s *Stats) {
	classes := s.Classes[:0]
	*s = Stats{}
	now := c.relNow()
	for i := 1; i < len(c.classes); i++ {
		cl := &c.classes[i]
		var cs ClassStats
		cs.ID, cs.ChunkSize, cs.ChunksPerPage = cl.id, cl.size, cl.perslab

		cl.mu.Lock()
		cs.TotalPages = len(cl.pages)
		cs.FreeChunks = cl.nfree
		ages := [numLRU]uint64{}
		for l := range cl.lru {
			if t := cl.lru[l].tail; t != 0 && !c.closed {
				ages[l] = uint64(since(now, c.hdr(t).atime.Load()))
			}
			cs.MemRequested += cl.lru[l].bytes
		}
		s.Bytes += cs.MemRequested
		cs.NumberHot, cs.NumberWarm, cs.NumberCold = cl.lru[lruHot].n, cl.lru[lruWarm].n, cl.lru[lruCold].n
		cs.NumberTemp = cl.lru[lruTemp].n
		cl.mu.Unlock()

		cs.TotalChunks = cs.TotalPages * cs.ChunksPerPage
		cs.UsedChunks = cs.TotalChunks - cs.FreeChunks
		cs.Number = cs.NumberHot + cs.NumberWarm + cs.NumberCold + cs.NumberTemp
		cs.AgeHot, cs.AgeWarm, cs.Age = ages[lruHot], ages[lruWarm], ages[lruCold]

		k := &cl.cnt
		cs.HitsToHot, cs.HitsToWarm, cs.HitsToCold = k.hits[lruHot].Load(), k.hits[lruWarm].Load(), k.hits[lruCold].Load()
		cs.HitsToTemp = k.hits[lruTemp].Load()
		cs.GetHits = cs.HitsToHot + cs.HitsToWarm + cs.HitsToCold + cs.HitsToTemp
		cs.CmdSet, cs.DeleteHits = k.cmdSet.Load(), k.deleteHits.Load()
		cs.IncrHits, cs.DecrHits = k.incrHits.Load(), k.decrHits.Load()
		cs.CasHits, cs.CasBadval, cs.TouchHits = k.casHits.Load(), k.casBadval.Load(), k.touchHits.Load()
		cs.Evicted, cs.EvictedNonzero = k.evicted.Load(), k.evictedNonzero.Load()
		cs.EvictedUnfetched, cs.EvictedActive = k.evictedUnfetched.Load(), k.evictedActive.Load()
		cs.EvictedTime, cs.OutOfMemory = k.evictedTime.Load(), k.outOfMemory.Load()
		cs.Reclaimed, cs.ExpiredUnfetched = k.reclaimed.Load(), k.expiredUnfetched.Load()
		cs.CrawlerReclaimed, cs.CrawlerItemsChecked = k.crawlerReclaimed.Load(), k.crawlerItemsChecked.Load()
		cs.MovesToCold, cs.MovesToWarm, cs.MovesWithinLRU = k.movesToCold.Load(), k.movesToWarm.Load(), k.movesWithinLRU.Load()
		cs.DirectReclaims, cs.TailRepairs, cs.LRUTailReflocked = k.directReclaims.Load(), k.tailRepairs.Load(), k.lruTailReflocked.Load()

		s.CurrItems += cs.Number
		s.Evictions += cs.Evicted
		s.Reclaimed += cs.Reclaimed
		s.ExpiredUnfetched += cs.ExpiredUnfetched
		s.EvictedUnfetched += cs.EvictedUnfetched
		s.EvictedActive += cs.EvictedActive
		s.CrawlerReclaimed += cs.CrawlerReclaimed
		s.CrawlerItemsChecked += cs.CrawlerItemsChecked
		if cs.TotalPages > 0 {
			s.ActiveSlabs++
		}
		classes = append(classes, cs)
	}
	s.Classes = classes

	s.TotalItems = c.totalItems.Load()
	s.GetMisses = c.getMisses.Load()
	s.GetExpired = c.getExpired.Load()
	s.GetFlushed = c.getFlushed.Load()
	s.DeleteMisses = c.deleteMisses.Load()
	s.IncrMisses = c.incrMisses.Load()
	s.DecrMisses = c.decrMisses.Load()
	s.CasMisses = c.casMisses.Load()
	s.TouchMisses = c.touchMisses.Load()
	s.MallocFails = c.mallocFails.Load()
	s.LRUCrawlerStarts = c.crawlerStarts.Load()
	s.LRUCrawlerRunning = c.crawlerRunning.Load() > 0
	s.SlabsMoved = c.slabsMoved.Load()
	s.SlabReassignRescues = c.slabRescues.Load()
	s.SlabReassignChunkRescues = c.chunkRescues.Load()
	s.SlabReassignEvictionsNomem = c.slabEvictions.Load()
	s.SlabReassignBusyItems = c.slabBusy.Load()
	s.SlabReassignRunning = c.rebalBusy.Load()
	s.SlabEvictions = c.pageEvictions.Load()
	s.LRUMaintainerJuggles = c.juggles.Load()

	power := c.hashPower.Load()
	s.HashPowerLevel = uint64(power)
	s.HashBytes = 4 << power << c.bucketShift
	s.HashIsExpanding = c.hashExpanding.Load()

	c.pageMu.Lock()
	s.LimitMaxbytes = uint64(c.limit)
	s.TotalMalloced = uint64(c.malloced)
	s.SlabGlobalPagePool = uint64(len(c.pool))
	c.pageMu.Unlock()
}

// ResetStats zeroes the counters as memcached's "stats reset" does; state
// (items, bytes, pages, hash table) is kept. It is safe for concurrent use.
func (c *Cache) ResetStats() {
	c.counters.reset()
	for i := 1; i < len(c.classes); i++ {
		c.classes[i].cnt.reset()
	}
}
