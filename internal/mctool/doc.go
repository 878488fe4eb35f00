// Package mctool holds the logic behind corvid's operator tools, corvid
// stat, corvid dump and corvid load: fetching and printing a server's
// stats as memcached-tool prints them, walking a cache's keys with
// lru_crawler metadump, the dump file format, and loading records into a
// server at a bounded rate. It speaks the memcached text and meta
// protocols over plain connections (and the binary protocol for binary
// keys too long for a base64 meta command), so it works against corvid
// and memcached 1.6 alike.
//
// A Conn is not safe for concurrent use; the other functions keep no
// shared state.
//
// # Dump file format
//
// A dump file is line-oriented. It starts with a header line
//
//	corvid-dump 1 created=<unix seconds> source=<host:port>
//
// ("corvid-dump" and the format version 1 are required; further
// space-separated name=value fields are informative and ignored when
// read). Each item follows as a record line and its data:
//
//	I <key> <flags> <exp> <bytes> <crc>\n<data>\n
//
// key is URL-encoded as lru_crawler metadump encodes it (every byte that
// is not an ASCII letter, digit or one of "-._~" written as %XX), flags
// is the 32-bit client flags in decimal, exp the absolute expiry in Unix
// seconds (0: never), bytes the length of data, and crc the CRC-32C
// (Castagnoli) of the record line up to and without its last space,
// followed by the data, written as 8 lowercase hex digits. The file ends
// with
//
//	END <records>\n
//
// where records counts the records before it, so that a file cut at a
// record boundary is told from a whole one. A reader stops at the first
// record that does not parse or whose checksum does not match and names
// it by number (from 1) and byte offset.
package mctool
