package mctool

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

var sampleRecords = []Record{
	{Key: "a", Flags: 5, Exp: 0, Value: []byte("abc")},
	{Key: "b%20x", Flags: 1 << 31, Exp: 1796683660, Value: []byte("line\r\nbreak\n")},
	{Key: "empty", Value: []byte{}},
	{Key: "bin\x00\xff key", Flags: 7, Exp: 1, Value: []byte{0, 1, 2, 255}},
}

func writeDump(t *testing.T, recs []Record) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, "127.0.0.1:11211", time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readDump reads every record; it returns those read and the error that
// stopped it (nil at a proper END).
func readDump(data []byte) ([]Record, error) {
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	var out []Record
	for n := 0; n < 1000; n++ {
		rec, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, rec)
	}
	return out, errors.New("too many records")
}

func TestDumpFileGolden(t *testing.T) {
	got := string(writeDump(t, sampleRecords[:2]))
	want := "corvid-dump 1 created=1700000000 source=127.0.0.1%3A11211\n" +
		"I a 5 0 3 c12cacbe\nabc\n" +
		"I b%2520x 2147483648 1796683660 12 " + "%s" + "\nline\r\nbreak\n\n" +
		"END 2\n"
	// The second checksum is computed independently of Write.
	sum := crcOf("I b%2520x 2147483648 1796683660 12", "line\r\nbreak\n")
	want = strings.Replace(want, "%s", sum, 1)
	if got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

func TestDumpFileRoundTrip(t *testing.T) {
	data := writeDump(t, sampleRecords)
	got, err := readDump(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(sampleRecords) {
		t.Fatalf("read %d records, wrote %d", len(got), len(sampleRecords))
	}
	for i, r := range got {
		w := sampleRecords[i]
		if r.Key != w.Key || r.Flags != w.Flags || r.Exp != w.Exp || !bytes.Equal(r.Value, w.Value) {
			t.Errorf("record %d: got %+v, want %+v", i+1, r, w)
		}
	}
	r, _ := NewReader(bytes.NewReader(data))
	if r.Header["source"] != "127.0.0.1:11211" || r.Header["created"] != "1700000000" {
		t.Errorf("header %v", r.Header)
	}
}

func TestDumpFileBad(t *testing.T) {
	good := writeDump(t, sampleRecords[:3])
	text := string(good)
	// Offsets of the record lines.
	rec2 := strings.Index(text, "I b%2520x")
	rec3 := strings.Index(text, "I empty")
	end := strings.Index(text, "END 3")
	flip := func(at int) []byte {
		b := bytes.Clone(good)
		b[at] ^= 0x01
		return b
	}
	cases := []struct {
		name   string
		data   []byte
		loaded int
		record int64
		offset int
		reason string
	}{
		{"value byte flipped", flip(rec2 + len("I b%2520x 2147483648 1796683660 12 xxxxxxxx\n") + 2), 1, 2, rec2, "checksum mismatch"},
		{"flags changed", []byte(strings.Replace(text, "I b%2520x 2147483648", "I b%2520x 2147483649", 1)), 1, 2, rec2, "checksum mismatch"},
		{"cut inside value", good[:rec2+len("I b%2520x 2147483648 1796683660 12 xxxxxxxx\n")+4], 1, 2, rec2, "ends inside its 12-byte value"},
		{"cut inside record line", good[:rec3+4], 2, 3, rec3, "without its END line"},
		{"cut before END", good[:end], 3, 4, end, "without its END line"},
		{"END count wrong", []byte(strings.Replace(text, "END 3", "END 4", 1)), 3, 4, end, "does not match the 3 records"},
		{"garbage record", []byte(text[:rec2] + "hello world\n" + text[rec2:]), 1, 2, rec2, "malformed record line"},
		{"length too big", []byte(strings.Replace(text, " 12 ", " 99999999999 ", 1)), 1, 2, rec2, "malformed length"},
		{"no newline after value", []byte(strings.Replace(text, "break\n\nI empty", "break\nXI empty", 1)), 1, 2, rec2, "no newline after"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := readDump(c.data)
			var fe *FileError
			if !errors.As(err, &fe) || !errors.Is(err, ErrDumpFile) {
				t.Fatalf("error %v, want a FileError", err)
			}
			if len(got) != c.loaded || fe.Record != c.record || fe.Offset != int64(c.offset) || !strings.Contains(fe.Reason, c.reason) {
				t.Errorf("read %d records, then %v; want %d records, then record %d at byte %d: %s", len(got), err, c.loaded, c.record, c.offset, c.reason)
			}
			if !strings.Contains(err.Error(), "record") || !strings.Contains(err.Error(), "byte") {
				t.Errorf("error %q does not say where", err)
			}
		})
	}
	for _, head := range []string{"", "VALUE a 0 1\r\n", "corvid-dump 2\nEND 0\n"} {
		if _, err := readDump([]byte(head)); !errors.Is(err, ErrDumpFile) {
			t.Errorf("header %q: %v", head, err)
		}
	}
}

func FuzzDumpReader(f *testing.F) {
	good := bytes.Buffer{}
	w, _ := NewWriter(&good, "x:1", time.Unix(1, 0))
	for _, r := range sampleRecords {
		w.Write(r)
	}
	w.Close()
	f.Add(good.Bytes())
	f.Add([]byte("corvid-dump 1\nI a 0 0 1 00000000\nx\nEND 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := readDump(data)
		if err == nil {
			// A file that reads whole writes back to the same records.
			again, err := readDump(writeDump(t, recs))
			if err != nil || len(again) != len(recs) {
				t.Fatalf("rewritten file: %d records, %v", len(again), err)
			}
		} else if !errors.Is(err, ErrDumpFile) {
			t.Fatalf("error %v is not ErrDumpFile", err)
		}
	})
}

func TestURLEncode(t *testing.T) {
	for _, c := range []struct{ in, enc string }{
		{"abc", "abc"},
		{"a b", "a%20b"},
		{"b%20x", "b%2520x"},
		{"-._~", "-._~"},
		{"k:1/é", "k%3A1%2F%C3%A9"},
		{"\x00\xff", "%00%FF"},
	} {
		if got := URLEncode(c.in); got != c.enc {
			t.Errorf("URLEncode(%q) = %q, want %q", c.in, got, c.enc)
		}
		if got, ok := URLDecode(c.enc); !ok || got != c.in {
			t.Errorf("URLDecode(%q) = %q, %v", c.enc, got, ok)
		}
	}
	for _, bad := range []string{"%", "%2", "%zz", "a%2"} {
		if _, ok := URLDecode(bad); ok {
			t.Errorf("URLDecode(%q) accepted", bad)
		}
	}
}
