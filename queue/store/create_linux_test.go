//go:build linux

package store

import (
	"path/filepath"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
)

// TestOpenSyncsNewJournal watches the data directory while a new queue is
// opened: once its journal is created, the directory is opened, to be
// fsynced, so that items written to the journal with their fsync are not
// lost with its directory entry after a power cut. A new data directory is
// made durable in its parent too.
func TestOpenSyncsNewJournal(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "data")
	pw := testutil.WatchDir(t, parent)
	q, err := Open(dir, "jobs", Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
	events := pw.Events()
	if synced, found := testutil.OpenedAfter(events, func(e string) bool { return e == "created data" }); !found || !synced {
		t.Errorf("the parent was not opened to be synced after the data directory was made; events %q", events)
	}

	w := testutil.WatchDir(t, dir)
	q, err = Open(dir, "more", Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
	events = w.Events()
	if synced, found := testutil.OpenedAfter(events, func(e string) bool { return e == "created more.journal" }); !found || !synced {
		t.Errorf("the directory was not opened to be synced after the journal was created; events %q", events)
	}
}
