package main

import (
	"errors"
	"io"
	"os"
	"strconv"

	"github.com/corvidcache/corvid/internal/atomicfile"
)

// writePidFile writes the process id to path, followed by a newline when
// newline is set (memcached's and Kestrel's files have one, nutcracker's
// and mcrouter's not). It replaces path atomically, so whoever reads path
// (a supervisor, a script polling for the start) finds either no file or
// the whole id, never an empty or partial one; the file need not survive
// a power cut, so it is not synced. Where the directory takes no new file
// (a pid file created ahead by an init script in a directory the server
// cannot write), path is written in place.
func writePidFile(path string, newline bool) error {
	b := strconv.AppendInt(nil, int64(os.Getpid()), 10)
	if newline {
		b = append(b, '\n')
	}
	err := atomicfile.Write(path, atomicfile.Options{Mode: 0o644}, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
	if errors.Is(err, atomicfile.ErrNoTemp) {
		return os.WriteFile(path, b, 0o644)
	}
	return err
}
