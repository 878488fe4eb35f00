//go:build linux

package queue_test

import (
	"strings"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/queue"
)

// TestJournalBackendNameFileSyncsDirectory watches the data directory
// while a queue with a shortened name is opened: once its name file has
// its name, the directory is opened, to be fsynced, so that after a power
// cut the journal is not found without its name file.
func TestJournalBackendNameFileSyncsDirectory(t *testing.T) {
	dir := t.TempDir()
	w := testutil.WatchDir(t, dir)
	st, err := queue.NewJournalBackend(dir, nil).Open(strings.Repeat("n", queue.MaxNameLength), queue.StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	events := w.Events()
	synced, found := testutil.OpenedAfter(events, func(e string) bool {
		return strings.HasPrefix(e, "renamed ") && strings.HasSuffix(e, ".name")
	})
	if !found {
		t.Fatalf("no name file renamed into place; events %q", events)
	}
	if !synced {
		t.Fatalf("the directory was not opened to be synced after the name file was; events %q", events)
	}
}
