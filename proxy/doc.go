// Package proxy is corvid's memcached proxy: twemproxy's drop-in. Each pool
// of a nutcracker.yml listens on its own address, places keys on its
// servers with package ring exactly as twemproxy does, and multiplexes its
// clients' requests onto a few pipelined connections per server, matching
// replies to requests by order.
//
// A Proxy is safe for concurrent use.
package proxy
