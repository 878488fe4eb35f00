package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// writeString is a write callback that writes s.
func writeString(s string) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := io.WriteString(w, s)
		return err
	}
}

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// mustHold fails t unless path holds want and dir holds path alone.
func mustHold(t *testing.T, path, want string) {
	t.Helper()
	if b, err := os.ReadFile(path); err != nil || string(b) != want {
		t.Fatalf("%s holds %q (%v), want %q", path, b, err, want)
	}
	if names := dirNames(t, filepath.Dir(path)); len(names) != 1 || names[0] != filepath.Base(path) {
		t.Fatalf("directory holds %q, want %s alone", names, filepath.Base(path))
	}
}

func TestWriteContentAndMode(t *testing.T) {
	for _, durable := range []bool{false, true} {
		t.Run(fmt.Sprintf("durable=%v", durable), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f")
			// A new file, then a replacement with another mode: the mode
			// is the one asked for each time, whatever the umask or the
			// old file's.
			for i, mode := range []fs.FileMode{0o640, 0o604} {
				want := strings.Repeat(fmt.Sprint(i), 100+i)
				if err := Write(path, Options{Mode: mode, Durable: durable}, writeString(want)); err != nil {
					t.Fatal(err)
				}
				mustHold(t, path, want)
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if runtime.GOOS != "windows" && fi.Mode().Perm() != mode {
					t.Errorf("mode %v, want %v", fi.Mode().Perm(), mode)
				}
			}
		})
	}
}

// TestWriteTempName checks that the temporary file is made in the
// target's directory, named by Options.Temp or by default "." + the base
// name + digits.
func TestWriteTempName(t *testing.T) {
	for _, tc := range []struct{ pattern, prefix string }{
		{"", ".snap"},
		{"snap.tmp*", "snap.tmp"},
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "snap")
		var during []string
		err := Write(path, Options{Mode: 0o600, Temp: tc.pattern}, func(w io.Writer) error {
			during = dirNames(t, dir)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(during) != 1 {
			t.Fatalf("pattern %q: directory held %q during the write, want one temporary file", tc.pattern, during)
		}
		digits, ok := strings.CutPrefix(during[0], tc.prefix)
		if !ok || digits == "" || strings.Trim(digits, "0123456789") != "" {
			t.Errorf("pattern %q: temporary file %q, want %q and digits", tc.pattern, during[0], tc.prefix)
		}
		mustHold(t, path, "")
	}
}

// TestWriteFailureKeepsOldFile makes each step that can fail fail: the
// old file stays as it was and no temporary file is left.
func TestWriteFailureKeepsOldFile(t *testing.T) {
	errCallback := errors.New("callback failed")
	cases := []struct {
		name  string
		write func(io.Writer) error
		want  error
	}{
		{"callback", func(w io.Writer) error {
			io.WriteString(w, "partial")
			return errCallback
		}, errCallback},
		{"write", func(w io.Writer) error {
			io.WriteString(w, "partial")
			w.(*os.File).Close() // the next write fails
			_, err := io.WriteString(w, "more")
			return err
		}, os.ErrClosed},
		{"panic", func(w io.Writer) error {
			io.WriteString(w, "partial")
			panic(errCallback)
		}, errCallback},
	}
	for _, tc := range cases {
		for _, durable := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/durable=%v", tc.name, durable), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "f")
				if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
					t.Fatal(err)
				}
				err := func() (err error) {
					defer func() {
						if r := recover(); r != nil {
							err = r.(error)
						}
					}()
					return Write(path, Options{Mode: 0o644, Durable: durable}, tc.write)
				}()
				if !errors.Is(err, tc.want) {
					t.Fatalf("error %v, want %v", err, tc.want)
				}
				if tc.name != "panic" && !strings.Contains(err.Error(), path) {
					t.Errorf("error %q does not name %s", err, path)
				}
				mustHold(t, path, "old")
			})
		}
	}
}

// TestWriteRenameFails replaces a directory, which cannot be done: the
// temporary file is removed.
func TestWriteRenameFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub")
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := Write(path, Options{Mode: 0o644}, writeString("new"))
	if err == nil || !strings.Contains(err.Error(), path) || errors.Is(err, ErrNoTemp) {
		t.Fatalf("error %v, want one naming %s, not ErrNoTemp", err, path)
	}
	if names := dirNames(t, dir); len(names) != 1 || names[0] != "sub" {
		t.Fatalf("directory holds %q, want sub alone", names)
	}
}

func TestWriteMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "f")
	called := false
	err := Write(path, Options{Mode: 0o644}, func(io.Writer) error {
		called = true
		return nil
	})
	if !errors.Is(err, ErrNoTemp) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("error %v, want ErrNoTemp and ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name %s", err, path)
	}
	if called {
		t.Error("the callback ran without a file")
	}
}

// TestWriteDurableSyncsDirectory checks that a durable write syncs the
// directory once the file holds its new name, and that one not durable
// does not.
func TestWriteDurableSyncsDirectory(t *testing.T) {
	for _, durable := range []bool{false, true} {
		dir := t.TempDir()
		path := filepath.Join(dir, "f")
		var synced []string
		syncDir = func(d string) error {
			b, err := os.ReadFile(path)
			synced = append(synced, fmt.Sprintf("%s holding %q (%v)", d, b, err))
			return SyncDir(d)
		}
		err := Write(path, Options{Mode: 0o644, Durable: durable}, writeString("new"))
		syncDir = SyncDir
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		if durable {
			want = []string{fmt.Sprintf("%s holding %q (%v)", dir, "new", nil)}
		}
		if fmt.Sprint(synced) != fmt.Sprint(want) {
			t.Errorf("durable=%v: synced %q, want %q", durable, synced, want)
		}
	}
}

// TestWriteDirectorySyncFails: the file is in place, and the error says
// the write is not known to be durable.
func TestWriteDirectorySyncFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	errSync := errors.New("sync failed")
	syncDir = func(string) error { return errSync }
	t.Cleanup(func() { syncDir = SyncDir })
	if err := Write(path, Options{Mode: 0o644, Durable: true}, writeString("new")); !errors.Is(err, errSync) || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %v, want %v naming %s", err, errSync, path)
	}
	mustHold(t, path, "new")
}

func TestSyncDir(t *testing.T) {
	if err := SyncDir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	if err := SyncDir(missing); runtime.GOOS != "windows" && !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing directory: %v, want ErrNotExist", err)
	}
}

// TestWriteConcurrent has several goroutines replace one file over and
// over, each with its own content written in several pieces, while others
// read it: every read finds one writer's whole content, and no temporary
// file is left.
func TestWriteConcurrent(t *testing.T) {
	const writers, rounds, size = 4, 50, 64 << 10
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	contents := make([][]byte, writers)
	for i := range contents {
		contents[i] = bytes.Repeat([]byte{byte('a' + i)}, size)
	}
	if err := Write(path, Options{Mode: 0o644}, writeString(string(contents[0]))); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers+2)
	for i := range writers {
		wg.Go(func() {
			for r := range rounds {
				err := Write(path, Options{Mode: 0o644, Durable: r%10 == 0}, func(w io.Writer) error {
					for p := range 8 {
						if _, err := w.Write(contents[i][p*size/8 : (p+1)*size/8]); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	done := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				b, err := os.ReadFile(path)
				if err != nil || len(b) != size || !bytes.Equal(b, contents[(b[0]-'a')%writers]) {
					errs <- fmt.Errorf("read %d bytes (%v), not one writer's whole content", len(b), err)
					return
				}
				select {
				case <-done:
					return
				default:
				}
			}
		})
	}
	wg.Wait()
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if names := dirNames(t, dir); len(names) != 1 || names[0] != "f" {
		t.Fatalf("directory holds %q, want f alone", names)
	}
}

// TestMkdirAll checks that MkdirAll makes every missing directory with
// the permission asked, takes an existing one, and refuses a file in the
// way.
func TestMkdirAll(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "a", "b", "c")
	if err := MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(base, "a"), filepath.Join(base, "a", "b"), dir} {
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() {
			t.Fatalf("%s: %v, %v", d, fi, err)
		}
		if runtime.GOOS != "windows" && fi.Mode().Perm()&^0o750 != 0 {
			t.Errorf("%s: mode %v, want within 0750", d, fi.Mode().Perm())
		}
	}
	if err := MkdirAll(dir, 0o750); err != nil {
		t.Errorf("again: %v", err)
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := MkdirAll(filepath.Join(file, "x"), 0o750); err == nil {
		t.Error("a directory under a file was made")
	}
	if err := MkdirAll(file, 0o750); err == nil {
		t.Error("a file was taken for a directory")
	}
}
