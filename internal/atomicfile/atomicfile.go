// Package atomicfile replaces files atomically: whoever opens the file
// finds either its old content or the whole new one, never an empty,
// partial or mixed file, however the writing process stops (and, with
// Options.Durable, after a power cut too).
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// Options say how Write writes a file. The zero value writes a file with
// no permissions at all, so Mode is always to be set.
type Options struct {
	// Mode is the permission of the file, set as it is: the umask does
	// not apply.
	Mode fs.FileMode
	// Durable makes the new content survive a crash or a power cut once
	// Write returns nil: the file is fsynced before it is renamed over
	// the old one, and its directory after. Without it the replacement
	// is atomic for every reader while the system runs, but a crash may
	// undo it or leave the old name empty.
	Durable bool
	// Temp is the name of the temporary file, a pattern as os.CreateTemp
	// takes it (the last "*" replaced by up to 10 random digits). The
	// default, "." + the base name of the path + "*", adds 11 bytes to
	// the name: a caller that removes what a crash leaves behind, or
	// whose names come near the file system's limit, sets its own.
	Temp string
}

// Write replaces the file at path with what write writes, atomically:
// write is given a new file in path's directory (named as Options.Temp
// says, unique to this call), which is then renamed over path. Concurrent
// Writes to one path are safe; the file ends as one of them wrote it.
//
// When write or anything else fails, the temporary file is removed and
// path is left as it was, except when only the sync of the directory of a
// Durable write fails: the new file is then in place, but may not survive
// a crash. Errors name path; when the temporary file cannot be created
// (a missing or read-only directory), the error wraps ErrNoTemp.
func Write(path string, opt Options, write func(w io.Writer) error) error {
	dir := filepath.Dir(path)
	pattern := opt.Temp
	if pattern == "" {
		pattern = "." + filepath.Base(path) + "*"
	}
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return fmt.Errorf("cannot replace %s: %w: %w", path, ErrNoTemp, err)
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		if !renamed {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(opt.Mode); err != nil {
		return fmt.Errorf("cannot replace %s: %w", path, err)
	}
	if err := write(f); err != nil {
		return fmt.Errorf("cannot replace %s: %w", path, err)
	}
	if opt.Durable {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("cannot replace %s: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot replace %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cannot replace %s: %w", path, err)
	}
	renamed = true
	if opt.Durable {
		if err := syncDir(dir); err != nil {
			return fmt.Errorf("cannot replace %s: %w", path, err)
		}
	}
	return nil
}

// syncDir is SyncDir; tests replace it to see when it runs.
var syncDir = SyncDir

// SyncDir makes the entries of directory dir durable: a file created,
// renamed or removed in it before survives a crash. On Windows, where a
// directory cannot be fsynced (and NTFS journals its entries), it does
// nothing.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot sync directory %s: %w", dir, err)
	}
	return nil
}

// MkdirAll makes dir and its missing parents with permission perm (before
// the umask), as os.MkdirAll, each made durable in its parent (the parent
// fsynced) before the next is made in it: a file made durable in dir then
// survives a power cut with its path.
func MkdirAll(dir string, perm os.FileMode) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := MkdirAll(parent, perm); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, perm); err != nil {
		if errors.Is(err, os.ErrExist) {
			if fi, serr := os.Stat(dir); serr == nil && fi.IsDir() {
				return nil // made meanwhile
			}
		}
		return err
	}
	return SyncDir(parent)
}
