package main

import (
	"os"
	"path/filepath"
	"strconv"
)

// writePidFile writes the process id to path, followed by a newline when
// newline is set (memcached's and Kestrel's files have one, nutcracker's
// and mcrouter's not). It writes a file beside path and renames it into
// place, so whoever reads path (a supervisor, a script polling for the
// start) finds either no file or the whole id, never an empty or partial
// one. Where the directory takes no new file (a pid file created ahead by
// an init script in a directory the server cannot write), path is written
// in place.
func writePidFile(path string, newline bool) error {
	b := strconv.AppendInt(nil, int64(os.Getpid()), 10)
	if newline {
		b = append(b, '\n')
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return os.WriteFile(path, b, 0o644)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
