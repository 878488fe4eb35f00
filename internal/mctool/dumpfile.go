package mctool

import (
	"bufio"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
	"time"
)

// dumpMagic and dumpVersion start a dump file's header line.
const (
	dumpMagic   = "corvid-dump"
	dumpVersion = "1"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Writer writes a dump file. It is not safe for concurrent use.
type Writer struct {
	w   *bufio.Writer
	n   int64
	buf []byte
}

// NewWriter writes the header naming the source server and the time.
func NewWriter(w io.Writer, source string, created time.Time) (*Writer, error) {
	dw := &Writer{w: bufio.NewWriterSize(w, 64<<10)}
	if _, err := fmt.Fprintf(dw.w, "%s %s created=%d source=%s\n", dumpMagic, dumpVersion, created.Unix(), URLEncode(source)); err != nil {
		return nil, err
	}
	return dw, nil
}

// Write appends one record.
func (w *Writer) Write(r Record) error {
	b := w.buf[:0]
	b = append(b, "I "...)
	b = append(b, URLEncode(r.Key)...)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(r.Flags), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, r.Exp, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(r.Value)), 10)
	sum := crc32.Update(crc32.Checksum(b, castagnoli), castagnoli, r.Value)
	b = append(b, ' ')
	b = fmt.Appendf(b, "%08x\n", sum)
	w.buf = b
	if _, err := w.w.Write(b); err != nil {
		return err
	}
	if _, err := w.w.Write(r.Value); err != nil {
		return err
	}
	w.n++
	return w.w.WriteByte('\n')
}

// Records returns how many records were written.
func (w *Writer) Records() int64 { return w.n }

// Flush writes the records written so far to the underlying writer,
// each whole, without the END line: a dump cut short.
func (w *Writer) Flush() error { return w.w.Flush() }

// Close writes the END line and flushes; it does not close the
// underlying writer.
func (w *Writer) Close() error {
	fmt.Fprintf(w.w, "END %d\n", w.n)
	return w.w.Flush()
}

// FileError is a truncated or corrupt dump file: which record (from 1)
// and at which byte offset its record line starts. errors.Is matches
// ErrDumpFile.
type FileError struct {
	Record int64
	Offset int64
	Reason string
}

func (e *FileError) Error() string {
	if e.Record == 0 {
		return fmt.Sprintf("not a corvid dump file: %s", e.Reason)
	}
	return fmt.Sprintf("bad record %d at byte %d: %s", e.Record, e.Offset, e.Reason)
}

// Unwrap returns ErrDumpFile.
func (e *FileError) Unwrap() error { return ErrDumpFile }

// Reader reads a dump file. It is not safe for concurrent use.
type Reader struct {
	r    *bufio.Reader
	off  int64 // bytes consumed
	n    int64 // records read
	done bool
	// Header holds the header's name=value fields (created, source).
	Header map[string]string
}

// NewReader reads and checks the header.
func NewReader(r io.Reader) (*Reader, error) {
	dr := &Reader{r: bufio.NewReaderSize(r, 64<<10), Header: map[string]string{}}
	line, err := dr.line()
	if err != nil {
		return nil, &FileError{Reason: "no header line"}
	}
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != dumpMagic {
		return nil, &FileError{Reason: fmt.Sprintf("header %q does not start with %q", clip(line), dumpMagic)}
	}
	if f[1] != dumpVersion {
		return nil, &FileError{Reason: fmt.Sprintf("format version %q, want %s", clip(f[1]), dumpVersion)}
	}
	for _, kv := range f[2:] {
		if k, v, ok := strings.Cut(kv, "="); ok {
			if d, ok := URLDecode(v); ok {
				v = d
			}
			dr.Header[k] = v
		}
	}
	return dr, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// line reads one line (at most 64 KB) without its \n.
func (r *Reader) line() (string, error) {
	b, err := r.r.ReadSlice('\n')
	r.off += int64(len(b))
	if err != nil {
		if err == bufio.ErrBufferFull {
			return "", errors.New("line longer than 64 KB")
		}
		if err == io.EOF && len(b) > 0 {
			return "", io.ErrUnexpectedEOF
		}
		return "", err
	}
	return string(b[:len(b)-1]), nil
}

// Offset returns how many bytes of the file have been consumed.
func (r *Reader) Offset() int64 { return r.off }

// Next returns the next record, io.EOF after the END line, or a
// *FileError.
func (r *Reader) Next() (Record, error) {
	if r.done {
		return Record{}, io.EOF
	}
	start := r.off
	num := r.n + 1
	bad := func(format string, a ...any) (Record, error) {
		return Record{}, &FileError{Record: num, Offset: start, Reason: fmt.Sprintf(format, a...)}
	}
	line, err := r.line()
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return bad("the file ends here without its END line (truncated)")
		}
		return bad("%v", err)
	}
	if rest, ok := strings.CutPrefix(line, "END "); ok {
		n, err := strconv.ParseInt(rest, 10, 64)
		if err != nil || n != r.n {
			return bad("END line %q does not match the %d records read", clip(line), r.n)
		}
		r.done = true
		return Record{}, io.EOF
	}
	f := strings.Split(line, " ")
	if len(f) != 6 || f[0] != "I" {
		return bad("malformed record line %q", clip(line))
	}
	var rec Record
	var ok bool
	if rec.Key, ok = URLDecode(f[1]); !ok || rec.Key == "" {
		return bad("malformed key %q", clip(f[1]))
	}
	flags, err := strconv.ParseUint(f[2], 10, 32)
	if err != nil {
		return bad("malformed flags %q", clip(f[2]))
	}
	rec.Flags = uint32(flags)
	if rec.Exp, err = strconv.ParseInt(f[3], 10, 64); err != nil || rec.Exp < 0 {
		return bad("malformed expiry %q", clip(f[3]))
	}
	size, err := strconv.Atoi(f[4])
	if err != nil || size < 0 || size > MaxValue {
		return bad("malformed length %q", clip(f[4]))
	}
	want, err := strconv.ParseUint(f[5], 16, 32)
	if err != nil || len(f[5]) != 8 {
		return bad("malformed checksum %q", clip(f[5]))
	}
	var n int
	rec.Value, n, err = readN(r.r, size+1)
	r.off += int64(n)
	if err != nil {
		return bad("the file ends inside its %d-byte value (truncated)", size)
	}
	if rec.Value[size] != '\n' {
		return bad("no newline after its %d-byte value", size)
	}
	rec.Value = rec.Value[:size]
	head := line[:strings.LastIndexByte(line, ' ')]
	if sum := crc32.Update(crc32.Checksum([]byte(head), castagnoli), castagnoli, rec.Value); sum != uint32(want) {
		return bad("checksum mismatch (%08x, file says %s)", sum, f[5])
	}
	r.n++
	return rec, nil
}

// Records returns how many records were read.
func (r *Reader) Records() int64 { return r.n }
