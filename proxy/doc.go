// Package proxy is corvid's memcached proxy: twemproxy's drop-in, and
// the engine of corvid router (mcrouter's route handles, see "Route
// trees"). Each pool of a nutcracker.yml listens on its own address,
// places keys on its servers with package ring exactly as twemproxy
// does, and multiplexes its clients' requests onto a few pipelined
// connections per server, matching replies to requests by order.
//
// A Proxy is safe for concurrent use.
//
// # Data path
//
// A client connection has a reader goroutine, which parses requests with
// package protocol and forwards each to the server that owns its key (the
// bytes as received). The reader waits for input without a read buffer
// (buffers come from a pool while a request is read). An idle client
// holds no goroutine at all: a new client, and one whose reader has
// waited through a quarter-second sweep with nothing in flight, is
// parked, its socket watched by the proxy's one idler goroutine (an epoll
// set, on Linux), its reader's scratch dropped; the idler starts a reader
// when the socket becomes readable. A parked client costs under 2 KB of
// heap (its state, the socket's), and one that has sent requests the same
// once the goroutines it used are collected (bench/README.md has the
// measured RSS). A server connection has a reader goroutine, which frames
// replies (one line, VALUE blocks up to END, a meta VA and its data ...)
// and hands each to the oldest request awaiting one, and a writer
// goroutine, which connects.
//
// Nothing waits for a hand-off in the common case: a client's reader,
// once it has queued the requests it parsed from one read, writes what
// its server connections hold queued (other clients' requests too) unless
// another goroutine is writing there; and the goroutine that completes a
// client's oldest pending request (a server connection's reader, once it
// has framed what it read) writes the client's ready replies, in request
// order, unless another is writing them. Both write only what the socket
// takes at once: the rest, and a large reply, go to the server
// connection's writer goroutine or to a writer goroutine the client has
// while that lasts, so that no reader ever waits for a peer that does
// not read. With server_connections above 1, each client's requests to
// a server all take the same one of its connections (clients are spread
// over them), so that the server runs them in the client's order. Replies
// are framed, never rebuilt, except for split multi-gets, whose fragments'
// VALUE blocks are merged in the client's key order with one END.
//
// With Config.EventLoop (experimental, Linux only), one goroutine reads
// every client socket and every server connection instead, blocking in
// epoll_wait as nutcracker does: it runs the same request handling and
// reply framing for each readable socket, then writes, once per wait,
// what the clients queued on each server connection and the replies
// that are ready. A server connection's writer goroutine still connects
// and writes what a socket does not take at once. A client whose request
// would wait for its replies to be read (its window is full) takes the
// loop's goroutine as its reader while a new one runs the loop, and
// comes back to the loop once idle; the loop bounds its wait by the
// oldest calls' deadlines (loop_linux.go).
//
// Every request sent to a server gets exactly one reply, so that a server
// connection's FIFO can never fall out of step:
//
//   - A text request with noreply is sent without its noreply token; the
//     proxy drops the reply (memcached sends none with noreply, not even
//     an error).
//   - A quiet meta request (flag q) is sent as received followed by "mn";
//     its reply is whatever the server sends up to that MN, which the
//     proxy removes. A client's own "mn" is answered by the proxy once the
//     replies of the requests before it are written.
//   - Only complete requests are forwarded: a client that disconnects in
//     the middle of one sends nothing.
//
// A client whose first byte is 0x80 speaks the binary protocol (as
// memcached's -B auto decides); see binary.go. Its requests are judged by
// their headers as memcached judges them, routed by key and sent on the
// server's binary connections (a server has as many as text ones, made on
// the first binary request); a quiet request is sent as its plain form and
// the proxy drops the reply memcached would not have sent; each reply
// carries the client's opcode and opaque. The proxy answers noop (in
// order), version, quit, quitq and stat (its counters) itself; flush goes
// to every server; SASL and the opcodes memcached does not serve get
// "unknown command".
//
// The proxy answers version, stats (its own counters as STAT lines; ERROR,
// as memcached, after an argument memcached does not know), mn and quit
// itself; flush_all goes to every server of the pool and is
// answered OK only when all of them answered OK; verbosity and the other
// commands no single server owns are answered "SERVER_ERROR <command> is
// not supported by the proxy". Malformed requests get memcached's error and
// never reach a server.
//
// # Route trees
//
// corvid router (Config.Routes, an mcrouter configuration) listens on
// each address of Config.Listen (its listeners are the pools "router",
// "router1", ...), and every client there routes through the tree's
// root; a nutcracker.yml pool with a route: routes its clients through
// that tree, whose PoolRoutes name the file's pools (a PoolRoute without
// a hash then places keys as its pool does, ejections included). A tree
// (package route's description) is compiled once per load into nodes;
// its leaves are PoolRoutes over the pools' backends, so connections,
// pipelining, timeouts and ejection are a pool's. corvid router's pools
// that name the same server with the same timeout share its backend (its
// connections and what it holds), as mcrouter shares one destination
// per server; a reload keeps it while a pool names it so, and flush_all
// reaches it once. Its counters then show under each of those pools. A
// nutcracker.yml's pools keep their own servers, as twemproxy's.
//
// Selectors (PoolRoute, HashRoute, PrefixSelectorRoute: longest prefix,
// then the wildcard; OperationSelectorRoute: a meta command takes its
// classic counterpart's policy; RandomRoute; RateLimitRoute's pass or
// refuse) resolve a request to one node without allocating; a PoolRoute
// then sends the client's bytes as a plain pool does, so a selector
// costs the data path a few comparisons. A key a selector leaves
// without a route gets NullRoute's reply.
//
// Composers need the reply. The request is copied into a step (rstep)
// that sends sub-calls to its children; a sub-call's completion, on the
// server connection's reader that framed it, goes back to the step,
// which completes the client's call, sends to the next child, or sends
// detached copies; no goroutine waits for a composed request.
//
//   - FailoverRoute (and LatestRoute: a failover over failover_count
//     children from one chosen at random per tree) tries its next child
//     after a failover error as mcrouter defines it: a connection
//     failure or timeout, or the server's SERVER_ERROR (not
//     CLIENT_ERROR or ERROR); after the last, its reply stands.
//   - MissFailoverRoute tries its next child after anything but a hit
//     (a get-like request; others go to the first child).
//   - WarmUpRoute: a get goes to cold; anything but a hit there goes to
//     warm, whose hit is answered and added to cold ("add" with the
//     route's exptime, detached; without one, with the time the item has
//     left in warm, which a detached "mg <key> t" to warm asks first, as
//     mcrouter's metaget). A gets that misses in cold asks warm
//     ("mg <key> v f t"); warm's hit is added to cold, and the gets is
//     asked of cold again, so that its CAS unique is cold's (as
//     mcrouter); warm's miss answers cold's. Other requests go to cold.
//   - AllSyncRoute answers the worst reply as mcrouter ranks them (a
//     hit or success, then a miss or not stored, then a connection
//     failure or timeout, then SERVER_ERROR, then CLIENT_ERROR; of
//     replies ranked alike, the first to arrive). AllFastestRoute answers the first reply that is not an error
//     (else the last), AllMajorityRoute the reply whose result half the
//     children plus one gave (else the last); the other children's
//     replies are dropped when they come (within the pool's timeout),
//     their sub-calls counted as one of the node's detached copies.
//   - AllAsyncRoute answers at once with NullRoute's reply and sends
//     detached copies to its children; AllInitialRoute answers its
//     first child's reply and sends detached copies to the others.
//   - NullRoute answers mcrouter's default reply (END or EN for a get,
//     NOT_STORED or NS for a store, NOT_FOUND or NF otherwise);
//     ErrorRoute "SERVER_ERROR" and its response.
//   - A PoolRoute's shadows get a detached copy of a request whose
//     server's index is in index_range and whose key's fraction is in
//     key_fraction_range.
//
// Detached copies (AllAsyncRoute's, AllInitialRoute's, shadows', warm-up
// adds) are bounded per node at 1024 in flight, and in bytes over the
// whole proxy: the requests of the copies in flight (a warm-up fill's
// value while it asks warm for the item's time), with the replies a
// composer on a copy's way holds from its children, weigh at most
// Config.WriteBufMemLimit (64 MiB by default), a budget of their own, not
// the held replies', so that a slow shadow or async pool takes nothing
// from the primary's clients. A copy past either bound is dropped and
// counted, so that a slow pool never slows the primary, and what
// clients send cannot grow the proxy's memory through it; an answer of
// AllFastestRoute or AllMajorityRoute past them waits for its last
// child's reply. A multi-get is split by
// destination as a pool's: keys that selectors send to one server go
// together; a key whose route composes goes alone through it; the
// replies are merged in key order. A binary request takes the route its
// text counterpart takes (routebinary.go): its bytes go to a PoolRoute's
// server on a binary connection, composers judge its replies by their
// status, NullRoute and AllAsyncRoute answer it in binary (nothing to a
// quiet store, as to a noreply one; a getk's miss with its key, as
// memcached's), ErrorRoute with status 0x84 and its
// response; a WarmUpRoute takes a binary get as a gets, so that the
// reply's CAS unique is cold's (a key with a space or a control
// character, which its text requests to warm cannot carry, goes to cold
// alone).
// flush_all goes to every server of the pools the tree names.
//
// corvid router answers mcrouter's admin gets itself, as mcrouter's
// service info does (a hit whose value is the answer):
// __mcrouter__.version (Config.RouterVersion), .config_age (seconds since
// the tree was loaded), .config_file (Config.Routes.Source), .options and
// .options(<name>) (Config.RouterOptions); a command it cannot answer
// (an unknown one, config_file for an inline configuration, an unknown
// option) gets "ERROR: <reason>" as its value.
//
// Per-node counters (Stats.Routes; in the stats command as
// route:<name>:<counter>, and under "routes" in the stats port's JSON):
// requests, errors (error replies a composer saw, requests refused by a
// RateLimitRoute), failovers (requests sent to a next child),
// warmup_fills, shadow_sent, shadow_dropped, async_pending,
// async_pending_bytes and async_dropped. A node is named by its name property, else by where
// the configuration defines it ("route.children[1]").
//
// A reload (Reload, ReloadRoutes) compiles the new tree over the new
// pools (unchanged servers keep their backends; corvid router's, whichever
// pools named them) before anything
// changes, so a bad tree leaves the old one serving; then it swaps the
// tree. New requests take the new tree; a request holds the tree it
// started with, and the servers the reload removes are closed once no
// client is routing on an old tree, the composed requests in flight on
// every older tree (not only the one this reload replaced) have
// finished, and they have answered what they hold.
//
// # Failures
//
// As in twemproxy, a request whose server fails gets
// "SERVER_ERROR <reason>" with the C library's text for the cause
// ("Connection timed out" when the pool's timeout passes, "Connection
// refused", "Invalid argument" for a reply the proxy cannot frame); a
// multi-get fails as a whole when one of its fragments fails. A binary
// client gets status 0x84 (internal error) with the same reason as body. A timeout,
// an end of file, garbage or an error closes the server connection and
// fails every request it holds. A reply that cannot answer the request
// awaiting it (a binary one with another opcode or opaque, a VALUE of a
// key the get did not ask, a meta one with another opaque or key; a k
// flag may name the key as sent, decoded from base64 or in base64, as
// memcached writes an item's key in the form it was stored in) is
// garbage: the server is out of step. With auto_eject_hosts, server_failure_limit
// consecutive failures eject the server: the continuum is rebuilt over the
// live servers (the placement nutcracker then has) until
// server_retry_timeout passes.
//
// # Memory bounds
//
// A client's read buffer holds at most one request: a line of at most
// protocol.MaxGetLineLen bytes (other lines: protocol.MaxLineLen, then
// the connection is closed) and a storage command's data of at most
// Config.MaxValueLen bytes (a longer value is refused and discarded as it
// arrives). It starts at 4 KiB; a request that does not fit takes a large
// buffer (a power of two in size: fourfold steps for a line, its whole
// size at once for a value), recycled through the proxy's free lists, and
// gives it back once the request is handled. The large buffers of all
// clients together are bounded by Config.ReadBufMemLimit (64 MiB by
// default, as corvid server's read_buf_mem_limit): a request that would
// need more is answered "SERVER_ERROR out of memory reading request" (a
// binary client gets no reply) and its connection closed, counted in the
// stats command's read_buf_oom. The read buffers are then at most 4 KiB
// per client reading a request plus that bound (plus the free lists'
// spares, at most 20 MiB).
//
// Replies are bounded per client by admission: its reader stops taking
// requests while those awaiting its writer weigh more than its window
// (a request is one unit, four keys of a multi-get one; the window
// starts at 8 units, grows up to 512 while replies are light and the
// client fills it, and shrinks to the units whose replies fit 4 MiB) or
// their completed replies hold more than 4 MiB. One request is always
// admitted when none is pending. A multi-get is sent in chunks of as
// many distinct keys as the client's window when the line is read, at
// least 32 (so 32 while its replies are large, up to 512 while they are
// light), and at most 4096 keys in all (a key repeated within a
// chunk is fetched once), each admitted as a request of its own, so that
// what it holds does not grow with the keys it asks for: its keys are
// walked in its line one chunk at a time, so that beyond its read buffer
// a line costs only its current chunk; the client still gets one reply, or the VALUE
// blocks of the chunks before one that failed and its error, as
// memcached answers a multi-get that fails part way.
//
// Over the whole proxy, the completed replies not yet written to their
// clients are bounded by one budget, whatever the number of clients, as
// corvid server bounds its blocked write buffers: Config.WriteBufMemLimit
// (64 MiB by default, or 8 × MaxValueLen), with an allowance past it of
// max(limit/8, 2 × the largest reply) (8 MiB by default). Past the limit
// a client may take a reply only while it then holds at most two of the
// largest replies, and only within half of the allowance unless it
// reads (its replies were all written once, its writer is not waiting
// for the socket, and the socket has sent all it was given): the other
// half is kept so that a client that reads always goes on. A reply past that is read from its
// server (its connection must stay in step) but not kept: its client is
// closed, admits nothing more (the requests it had read are dropped),
// and is counted in the stats command's write_buf_oom. A client that
// holds replies while the total is past the limit and whose socket
// takes nothing for a second is closed and counted the same way;
// clients that read slowly but steadily go on. The replies held are
// then at most the limit plus its allowance (72 MiB by default); each
// server connection also holds the one reply it is reading. The replies
// a composed request holds from its children until it answers (an
// AllSyncRoute waiting for a slow child) count the same, against the
// client's bound. The stats command reports the bytes held as
// write_buf_bytes.
//
// Large client read buffers (past 64 KiB) are mapped outside the Go
// heap (package internal/offheap), so that the collector's headroom does
// not double what clients make the proxy hold; held replies are on the
// heap, so the proxy's RSS may reach about twice their bound.
//
// A server connection's queue of unsent requests is bounded at 8 MiB;
// past it requests fail at once with "SERVER_ERROR server queue is
// full".
//
// Clients that do not read still cost the others time: the replies they
// asked for are read from the server connections that other clients'
// requests wait behind (twemproxy has the same head-of-line cost).
//
// # Stopping
//
// Close (and so SIGTERM to corvid proxy) stops at once, as nutcracker
// does: it closes the listeners, the client and server connections, and
// fails the requests in flight, so a client or a server that does not
// read cannot delay it; there is no grace period.
//
// # Concurrency
//
// Each pool's routing state (its settings, continuum and servers) is an
// immutable tree behind an atomic pointer, and so is a front's route
// tree: a request takes the tree once, and an ejection or a reload swaps
// in a new one. A client records the
// tree it routes with until the request is queued on its servers, so that
// a server a reload removes is closed only when no client can still send
// to it and it has answered what it holds (see Proxy.Reload).
//
// Locks, in the order they may be taken: the proxy's reload mutex, the
// proxy's mutex (clients, pools, listeners), the idler's mutex (parked
// clients), a pool's rebuild mutex
// (serialises its tree swaps), a server's mutex (its ejection time). A
// server connection's mutex guards its queues and is taken with none of
// the others held. A composed request's step mutex is taken with no
// server connection's held; while it is held the step may complete a
// client's call (taking the client's mutex) or another step's sub-call
// (taking that step's, inner in the tree), and queue requests on server
// connections.
package proxy
