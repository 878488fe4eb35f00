package server

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/corvidcache/corvid/internal/tcpnet"
)

// UDP framing, as memcached's. Every datagram starts with an 8-byte
// header of four big-endian 16-bit fields: request id, sequence number,
// total number of datagrams in the message, and a reserved field (0).
const (
	udpHeaderSize = 8
	// udpMaxDatagram is the size of a full reply datagram, header
	// included (memcached's UDP_MAX_PAYLOAD_SIZE).
	udpMaxDatagram = 1400
	udpMaxPayload  = udpMaxDatagram - udpHeaderSize
	// udpReadSize is the largest request datagram read whole; longer
	// ones are cut, as memcached's 64 KiB UDP read buffer cuts them.
	udpReadSize = 64 << 10
	// udpMaxReply caps the replies to one request datagram, so that a
	// small request cannot make corvid send megabytes to a forged
	// source address (memcached has no cap). A datagram whose replies
	// grow past it is answered replyUDPTooLarge instead.
	udpMaxReply = 64 << 10
	// udpSocketBuffer is the kernel buffer asked for each UDP socket.
	udpSocketBuffer = 4 << 20
)

// replyUDPTooLarge replaces the replies to a datagram that would exceed
// udpMaxReply.
const replyUDPTooLarge = "SERVER_ERROR reply too large for UDP\r\n"

// errUDPReplyTooLarge stops the handling of a datagram whose replies grew
// past udpMaxReply.
var errUDPReplyTooLarge = errors.New("server: reply too large for UDP")

// udpConn serves one UDP socket. A single goroutine (udpLoop) reads its
// datagrams and handles each one through a conn, so requests take the same
// path as on TCP; the conn's replies are then cut into framed datagrams.
// Only that goroutine touches the fields other than peer and busy.
type udpConn struct {
	srv *Server
	pc  *net.UDPConn
	c   *conn
	// write sends one datagram; tests replace it.
	write func(b []byte, to netip.AddrPort) (int, error)
	out   []byte // the datagram being framed
	// overflow is set when the replies to the current datagram exceeded
	// udpMaxReply.
	overflow bool

	peer atomic.Pointer[netip.AddrPort] // last client, for "stats conns"
	busy atomic.Bool                    // a datagram is being handled
}

func newUDPConn(s *Server, pc *net.UDPConn) *udpConn {
	u := &udpConn{srv: s, pc: pc, out: make([]byte, 0, udpMaxDatagram)}
	u.write = pc.WriteToUDPAddrPort
	u.c = newConn(s, pc)
	u.c.flushFn = u.flush
	return u
}

// listenUDP opens the sockets of Config.UDPAddrs.
func (s *Server) listenUDP() error {
	for _, addr := range s.cfg.UDPAddrs {
		pc, err := net.ListenPacket(tcpnet.UDP(addr), addr)
		if err != nil {
			return err
		}
		uc := pc.(*net.UDPConn)
		uc.SetReadBuffer(udpSocketBuffer)
		uc.SetWriteBuffer(udpSocketBuffer)
		s.udp = append(s.udp, newUDPConn(s, uc))
	}
	return nil
}

// UDPAddrs returns the addresses the server serves UDP on, in the order
// of Config.UDPAddrs.
func (s *Server) UDPAddrs() []net.Addr {
	addrs := make([]net.Addr, len(s.udp))
	for i, u := range s.udp {
		addrs[i] = u.pc.LocalAddr()
	}
	return addrs
}

// udpLoop reads and answers datagrams until the socket is closed. Read
// errors other than the close back off as accept errors do.
func (s *Server) udpLoop(u *udpConn) {
	defer s.wg.Done()
	buf := make([]byte, udpReadSize)
	var delay time.Duration
	for {
		n, peer, err := u.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			delay = nextRetry(delay)
			s.cfg.Logger.Warn("udp read failed", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		u.handle(buf[:n], peer)
	}
}

// handle answers one datagram from peer. As memcached, it ignores
// datagrams of no more than a header and those announcing more than one
// datagram (a request must fit in one); the sequence number and the
// reserved field are not looked at.
func (u *udpConn) handle(d []byte, peer netip.AddrPort) {
	if len(d) <= udpHeaderSize {
		return
	}
	c := u.c
	c.stats.bytesRead += uint64(len(d))
	defer u.srv.stats.add(&c.stats)
	if binary.BigEndian.Uint16(d[4:]) != 1 {
		return
	}
	u.busy.Store(true)
	if p := u.peer.Load(); p == nil || *p != peer {
		last := peer // allocated only when the client changes
		u.peer.Store(&last)
	}
	// Each datagram starts afresh: a request left incomplete at the end
	// of the previous one is dropped.
	c.rbuf, c.r, c.w = d[udpHeaderSize:], 0, len(d)-udpHeaderSize
	c.wbuf = c.wbuf[:0]
	c.swallow = 0
	c.closeAfterWrite = false
	c.proto = ProtoAuto
	u.overflow = false
	c.processAll()
	reply := c.wbuf
	if u.overflow || len(reply) > udpMaxReply {
		reply = []byte(replyUDPTooLarge)
	}
	// A client holding the reply finds the socket idle and the request
	// counted (the bytes written are added once they are sent).
	u.busy.Store(false)
	u.srv.stats.add(&c.stats)
	u.send(binary.BigEndian.Uint16(d), reply, peer)
	c.rbuf = nil
	if cap(c.wbuf) > keepBufSize || c.wbig != nil {
		c.releaseWbuf()
	}
}

// flush is the conn's flushFn: replies are sent once the datagram is
// handled, so a flush only checks the cap.
func (u *udpConn) flush() error {
	if len(u.c.wbuf) > udpMaxReply {
		u.overflow = true
		return errUDPReplyTooLarge
	}
	return nil
}

// send frames reply as one message of datagrams of at most udpMaxDatagram
// bytes, numbered 0 to n-1, and sends them to peer.
func (u *udpConn) send(id uint16, reply []byte, peer netip.AddrPort) {
	if len(reply) == 0 {
		return
	}
	total := (len(reply) + udpMaxPayload - 1) / udpMaxPayload
	for seq := range total {
		chunk := reply[seq*udpMaxPayload : min(len(reply), (seq+1)*udpMaxPayload)]
		u.out = appendUDPFrame(u.out[:0], id, uint16(seq), uint16(total), chunk)
		n, err := u.write(u.out, peer)
		u.c.stats.bytesWritten += uint64(n)
		if err != nil {
			u.srv.cfg.Logger.Debug("udp write failed", "peer", peer, "err", err)
			return
		}
	}
}

// appendUDPFrame appends a datagram: the frame header and payload.
func appendUDPFrame(dst []byte, id, seq, total uint16, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, id)
	dst = binary.BigEndian.AppendUint16(dst, seq)
	dst = binary.BigEndian.AppendUint16(dst, total)
	dst = append(dst, 0, 0)
	return append(dst, payload...)
}

// appendUDPConns adds the "stats conns" entries of the UDP sockets, as
// memcached shows its UDP connections: the socket while it waits for a
// datagram, the client and the socket while it handles one.
func (s *Server) appendUDPConns(entries []connEntry, now int64) []connEntry {
	for _, u := range s.udp {
		e := connEntry{fd: socketFD(u.pc), addr: addrString(u.pc.LocalAddr()), udp: true,
			state: "conn_read", since: now - u.c.lastCmd.Load()}
		if u.busy.Load() {
			if peer := u.peer.Load(); peer != nil {
				e.addr = "udp:" + netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port()).String()
				e.listen = addrString(u.pc.LocalAddr())
			}
			e.state = "conn_parse_cmd"
		}
		entries = append(entries, e)
	}
	return entries
}

// isUDP reports whether c serves a UDP socket.
func (c *conn) isUDP() bool {
	_, ok := c.nc.(*net.UDPConn)
	return ok
}

// watchUDP answers a valid "watch" received over UDP. memcached 1.6.18
// hands the socket to its logger, which cannot write to a datagram peer
// and drops the watcher: nothing is answered and the rest of the datagram
// is dropped. corvid adds no watcher at all, so datagrams (whose source
// can be spoofed) cannot use up the watcher slots or leave every request
// paying for the watch path.
func (c *conn) watchUDP() {
	if c.srv.watch.full() {
		c.reply("WATCHER_TOO_MANY log watcher limit reached")
		return
	}
	c.r = c.w
}

// metadumpUDP answers "lru_crawler metadump" received over UDP as
// memcached 1.6.18 does: the errors found before a dump starts are sent,
// but the dump itself, handed by memcached to its crawler, which cannot
// write to a datagram peer, is never sent; nothing is answered and the
// rest of the datagram is dropped. corvid does not walk the cache for it.
func (c *conn) metadumpUDP(arg []byte) {
	cache := c.srv.cache
	switch _, _, ok := parseClassList(arg, true); {
	case !cache.CrawlerSettings().Enabled:
		c.reply("CLIENT_ERROR lru crawler disabled")
	case c.srv.cfg.DisableDumping:
		c.reply("ERROR metadump not allowed")
	case len(c.wbuf) > 0:
		c.reply("ERROR cannot pipeline other commands before metadump")
	case !ok:
		c.reply("BADCLASS invalid class id")
	case cache.CrawlerBusy() || c.srv.dumping.Load():
		c.reply("BUSY currently processing crawler request")
	default:
		c.r = c.w
	}
}
