package storage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// snapItem is what a test expects to find after a load.
type snapItem struct {
	value   string
	flags   uint32
	exptime int64
	cas     uint64
}

func readItem(t *testing.T, c *Cache, key string) (snapItem, bool) {
	t.Helper()
	var it snapItem
	ok := c.Get([]byte(key), func(i Item) {
		it = snapItem{string(i.AppendValue(nil)), i.Flags, i.Exptime, i.CAS}
	})
	return it, ok
}

func TestSnapshotRoundTrip(t *testing.T) {
	clk := newFakeClock()
	src := newCache(t, Config{Now: clk.Now, NoCrawler: true})
	want := map[string]snapItem{}
	for i := range 3000 {
		key := fmt.Sprintf("key:%d", i)
		// Sizes from a few bytes to 300 KB span many classes, and
		// chained items.
		size := 1 + (i*7919)%2000
		if i%500 == 0 {
			size = 300 << 10
		}
		val := strings.Repeat(string(rune('a'+i%26)), size)
		var exp int64
		if i%3 == 1 {
			exp = 1000 // relative seconds
		}
		_, cas, err := src.StoreCAS(ModeSet, []byte(key), uint32(i), exp, []byte(val), 0)
		if err != nil {
			t.Fatal(err)
		}
		it, _ := readItem(t, src, key)
		want[key] = snapItem{val, uint32(i), it.exptime, cas}
	}
	// Items that expire before the save stay out of it (the save or the
	// LRU maintainer drops them).
	mustStore(t, src, ModeSet, "short", "gone", 0, 5, 0)
	clk.Advance(10 * time.Second)

	var buf bytes.Buffer
	st, err := src.Save(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if st.Items != len(want) || st.Bytes != int64(buf.Len()) {
		t.Fatalf("save stats %+v, want %d items, %d bytes", st, len(want), buf.Len())
	}

	// Load into a cache with other slab settings, later in time.
	clk.Advance(100 * time.Second)
	dst := newCache(t, Config{Now: clk.Now, NoCrawler: true, GrowthFactor: 2, MemoryLimit: 128 << 20})
	if err := CheckSnapshot(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	lst, err := dst.load(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if lst.Items != len(want) || lst.Skipped != 0 {
		t.Fatalf("load stats %+v, want %d items", lst, len(want))
	}
	var maxCAS uint64
	for key, w := range want {
		got, ok := readItem(t, dst, key)
		if !ok {
			t.Fatalf("%s missing after load", key)
		}
		if got != w {
			t.Fatalf("%s: got flags %d exptime %d cas %d len %d, want flags %d exptime %d cas %d len %d",
				key, got.flags, got.exptime, got.cas, len(got.value), w.flags, w.exptime, w.cas, len(w.value))
		}
		maxCAS = max(maxCAS, w.cas)
	}
	// CAS uniques go on after the largest restored one.
	_, cas, err := dst.StoreCAS(ModeSet, []byte("new"), 0, 0, []byte("v"), 0)
	if err != nil || cas <= maxCAS {
		t.Fatalf("new item's cas %d (err %v), want above %d", cas, err, maxCAS)
	}
	// Remaining TTLs are absolute: an item with 1000 s left at the save
	// expires 1000 s after it was stored, not after the load.
	clk.Advance(900 * time.Second)
	if _, ok := readItem(t, dst, "key:1"); ok {
		t.Fatal("key:1 outlived its exptime after the load")
	}
	if _, ok := readItem(t, dst, "key:0"); !ok {
		t.Fatal("key:0 (no exptime) gone")
	}
}

func TestSnapshotDropsItemsExpiredSinceSave(t *testing.T) {
	clk := newFakeClock()
	src := newCache(t, Config{Now: clk.Now, NoCrawler: true})
	mustStore(t, src, ModeSet, "soon", "v", 0, 60, 0)
	mustStore(t, src, ModeSet, "later", "v", 0, 600, 0)
	var buf bytes.Buffer
	if _, err := src.Save(&buf); err != nil {
		t.Fatal(err)
	}
	clk.Advance(120 * time.Second)
	dst := newCache(t, Config{Now: clk.Now, NoCrawler: true})
	st, err := dst.load(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if st.Items != 1 || st.Expired != 1 {
		t.Fatalf("load stats %+v, want 1 item and 1 expired", st)
	}
	if _, ok := readItem(t, dst, "soon"); ok {
		t.Fatal("expired item loaded")
	}
	if _, ok := readItem(t, dst, "later"); !ok {
		t.Fatal("live item missing")
	}
}

// snapshotBytes returns a small valid snapshot.
func snapshotBytes(t testing.TB) []byte {
	c := newCache(t, Config{NoCrawler: true})
	for i := range 20 {
		mustStore(t, c, ModeSet, fmt.Sprint("k", i), strings.Repeat("v", i*10), uint32(i), 0, 0)
	}
	var buf bytes.Buffer
	if _, err := c.Save(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSnapshotRejectsDamage(t *testing.T) {
	good := snapshotBytes(t)
	damaged := map[string][]byte{
		"empty":   nil,
		"foreign": []byte("this is not a snapshot at all, but it is long enough\n"),
		"extra":   append(append([]byte(nil), good...), 0),
	}
	// Every truncation.
	for n := 0; n < len(good); n += 1 + n/8 {
		damaged[fmt.Sprint("truncated at ", n)] = good[:n]
	}
	// Every flipped byte.
	for i := range good {
		b := append([]byte(nil), good...)
		b[i] ^= 0x20
		damaged[fmt.Sprint("flipped byte ", i)] = b
	}
	// A huge claimed value length must fail without allocating it.
	huge := append([]byte(nil), good[:snapHeaderSize]...)
	huge = append(huge, 0xff, 0xff, 0xff, 0x7f)
	huge = append(huge, make([]byte, snapRecordSize-4)...)
	huge[len(huge)-1] = 3
	// Its last access is the saving cache's start: only the length is bad.
	copy(huge[snapHeaderSize+24:], good[snapHeaderSizeV1:snapHeaderSize])
	damaged["huge length"] = huge

	c := newCache(t, Config{NoCrawler: true})
	path := filepath.Join(t.TempDir(), "snap")
	for name, b := range damaged {
		if err := CheckSnapshot(bytes.NewReader(b)); !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("%s: CheckSnapshot error %v, want ErrBadSnapshot", name, err)
		}
		if strings.HasPrefix(name, "flipped") && !strings.HasSuffix(name, "0") {
			continue // through the file only now and then: it is slow
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if st, err := c.LoadFile(path); !errors.Is(err, ErrBadSnapshot) || st.Items != 0 {
			t.Fatalf("%s: LoadFile stored %d items, error %v; want none and ErrBadSnapshot", name, st.Items, err)
		}
		var s Stats
		if c.ReadStats(&s); s.CurrItems != 0 {
			t.Fatalf("%s: %d items loaded from a bad snapshot", name, s.CurrItems)
		}
	}
}

func TestSnapshotFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cache.snap")
	src := newCache(t, Config{NoCrawler: true})
	mustStore(t, src, ModeSet, "a", "1", 7, 0, 0)
	if _, err := src.SaveFile(path); err != nil {
		t.Fatal(err)
	}
	// Saving again replaces the file atomically and leaves no temporary.
	mustStore(t, src, ModeSet, "b", "2", 0, 0, 0)
	st, err := src.SaveFile(path)
	if err != nil || st.Items != 2 {
		t.Fatalf("SaveFile: %+v %v", st, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("directory holds %d files, want only the snapshot", len(ents))
	}
	dst := newCache(t, Config{NoCrawler: true})
	if st, err := dst.LoadFile(path); err != nil || st.Items != 2 || st.Bytes == 0 {
		t.Fatalf("LoadFile: %+v %v", st, err)
	}
	if it, ok := readItem(t, dst, "a"); !ok || it.value != "1" || it.flags != 7 {
		t.Fatalf("a = %+v %v", it, ok)
	}
	if _, err := dst.LoadFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v, want ErrNotExist", err)
	}
	// A save into a directory that does not exist fails cleanly.
	if _, err := src.SaveFile(filepath.Join(dir, "no", "such", "dir")); err == nil {
		t.Fatal("SaveFile into a missing directory succeeded")
	}
}

func TestSnapshotWhileServing(t *testing.T) {
	c := newCache(t, Config{MemoryLimit: 8 << 20})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			key := []byte(fmt.Sprint("w", i%5000))
			c.Store(ModeSet, key, 0, 0, bytes.Repeat([]byte("x"), i%700), 0)
			if i%3 == 0 {
				c.Delete(key)
			}
		}
	}()
	for range 5 {
		var buf bytes.Buffer
		if _, err := c.Save(&buf); err != nil {
			t.Fatal(err)
		}
		if err := CheckSnapshot(bytes.NewReader(buf.Bytes())); err != nil {
			t.Fatalf("snapshot taken while serving: %v", err)
		}
	}
	close(stop)
	<-done
}

func FuzzLoadSnapshot(f *testing.F) {
	good := snapshotBytes(f)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(snapMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		c := newCache(t, Config{NoCrawler: true, MemoryLimit: 2 << 20, ItemSizeMax: 1 << 20})
		err := CheckSnapshot(bytes.NewReader(b))
		st, lerr := c.load(bytes.NewReader(b))
		if (err == nil) != (lerr == nil) {
			t.Fatalf("CheckSnapshot %v but load %v", err, lerr)
		}
		if err != nil && !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("error %v does not wrap ErrBadSnapshot", err)
		}
		if err == nil && len(b) < snapHeaderSizeV1+snapRecordSizeV1+12 {
			t.Fatalf("a %d-byte input passed the check", len(b))
		}
		_ = st
	})
}

// BenchmarkSnapshot1GB saves a cache holding about 1 GB of 1-KB items to a
// file and loads it into a new cache; it reports seconds per save and per
// load.
func BenchmarkSnapshot1GB(b *testing.B) {
	src := newCache(b, Config{MemoryLimit: 1200 << 20, NoCrawler: true})
	val := bytes.Repeat([]byte("x"), 1000)
	key := make([]byte, 0, 32)
	n := 0
	for ; n*1024 < 1<<30; n++ {
		key = fmt.Appendf(key[:0], "key:%d", n)
		if _, err := src.Store(ModeSet, key, 0, 0, val, 0); err != nil {
			b.Fatal(err)
		}
	}
	path := filepath.Join(b.TempDir(), "snap")
	var save, load time.Duration
	for b.Loop() {
		t0 := time.Now()
		st, err := src.SaveFile(path)
		if err != nil || st.Items != n {
			b.Fatalf("save: %+v %v", st, err)
		}
		t1 := time.Now()
		dst, err := New(Config{MemoryLimit: 1200 << 20, NoCrawler: true})
		if err != nil {
			b.Fatal(err)
		}
		lst, err := dst.LoadFile(path)
		if err != nil || lst.Items != n {
			b.Fatalf("load: %+v %v", lst, err)
		}
		load += time.Since(t1)
		save += t1.Sub(t0)
		dst.Close()
		b.SetBytes(lst.Bytes)
	}
	b.ReportMetric(save.Seconds()/float64(b.N), "s/save")
	b.ReportMetric(load.Seconds()/float64(b.N), "s/load")
}

// TestSnapshotFileLoadedOnce shows that LoadFile consumes a snapshot,
// whether it loads or is damaged, so that a crash after a warm start
// cannot bring back items deleted since; a file that is not a snapshot is
// left alone, and temporaries of an interrupted save are deleted unread.
func TestSnapshotFileLoadedOnce(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cache.snap")
	src := newCache(t, Config{NoCrawler: true})
	mustSet(t, src, "session", "old")
	if _, err := src.SaveFile(path); err != nil {
		t.Fatal(err)
	}
	dst := newCache(t, Config{NoCrawler: true})
	if st, err := dst.LoadFile(path); err != nil || st.Items != 1 {
		t.Fatalf("LoadFile: %+v %v", st, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("snapshot still there after loading it: %v", err)
	}
	again := newCache(t, Config{NoCrawler: true})
	if _, err := again.LoadFile(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("second LoadFile: %v, want ErrNotExist", err)
	}

	// A damaged snapshot goes too.
	if _, err := src.SaveFile(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 1
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := again.LoadFile(path); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("damaged: %v, want ErrBadSnapshot", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("damaged snapshot still there: %v", err)
	}

	// A file that is not a snapshot is no danger: it stays.
	if err := os.WriteFile(path, []byte("precious notes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := again.LoadFile(path); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("foreign: %v, want ErrBadSnapshot", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "precious notes\n" {
		t.Fatalf("foreign file now holds %q", got)
	}
	os.Remove(path)

	// A complete snapshot left under a temporary name (a crash between
	// the write and the rename) is deleted, never loaded; other names
	// stay.
	if _, err := src.SaveFile(path); err != nil {
		t.Fatal(err)
	}
	tmp := path + ".tmp123456"
	if err := os.Rename(path, tmp); err != nil {
		t.Fatal(err)
	}
	other := path + ".tmp-notes"
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := again.LoadFile(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("only a temporary: %v, want ErrNotExist", err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file left: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("unrelated file removed: %v", err)
	}
	if _, ok := value(again, "session"); ok {
		t.Fatal("loaded a temporary file")
	}
}

// TestSnapshotFileTempRemoved stops SaveFile while it writes (Save waits
// for moveGate) to see the temporary file it writes: a snapshot left under
// that name, as a crash between the write and the rename leaves it, is
// removed by LoadFile, never loaded.
func TestSnapshotFileTempRemoved(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cache.snap")
	src := newCache(t, Config{NoCrawler: true})
	mustSet(t, src, "session", "old")
	src.moveGate.Lock()
	saved := make(chan error, 1)
	go func() {
		_, err := src.SaveFile(path)
		saved <- err
	}()
	var tmp string
	for deadline := time.Now().Add(10 * time.Second); tmp == "" && time.Now().Before(deadline); {
		if ents, _ := os.ReadDir(dir); len(ents) == 1 {
			tmp = filepath.Join(dir, ents[0].Name())
		} else {
			time.Sleep(time.Millisecond)
		}
	}
	src.moveGate.Unlock()
	if err := <-saved; err != nil {
		t.Fatal(err)
	}
	if tmp == "" {
		t.Fatal("SaveFile wrote no temporary file")
	}
	if err := os.Rename(path, tmp); err != nil {
		t.Fatal(err)
	}
	dst := newCache(t, Config{NoCrawler: true})
	if _, err := dst.LoadFile(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("only a temporary %s: %v, want ErrNotExist", filepath.Base(tmp), err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file %s left: %v", filepath.Base(tmp), err)
	}
	if _, ok := value(dst, "session"); ok {
		t.Fatal("loaded a temporary file")
	}
}

// TestSnapshotFileCannotRemove shows that a snapshot LoadFile cannot
// remove (a read-only directory) is not loaded: the next crash would load
// it again.
func TestSnapshotFileCannotRemove(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.snap")
	src := newCache(t, Config{NoCrawler: true})
	mustSet(t, src, "session", "old")
	if _, err := src.SaveFile(path); err != nil {
		t.Fatal(err)
	}
	removeFile = func(string) error { return os.ErrPermission }
	t.Cleanup(func() { removeFile = os.Remove })
	dst := newCache(t, Config{NoCrawler: true})
	st, err := dst.LoadFile(path)
	if !errors.Is(err, ErrSnapshotKept) || !errors.Is(err, os.ErrPermission) || st.Items != 0 {
		t.Fatalf("LoadFile: %+v %v, want ErrSnapshotKept", st, err)
	}
	if _, ok := value(dst, "session"); ok {
		t.Fatal("a snapshot that stays was loaded")
	}
}
