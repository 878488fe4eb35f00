package mctool

import (
	"bytes"
	"testing"
)

func TestDisplayGolden(t *testing.T) {
	items := []Stat{
		{"items:1:number", "4"}, {"items:1:age", "195"}, {"items:1:evicted", "0"},
		{"items:1:evicted_time", "0"}, {"items:1:outofmemory", "0"},
		{"items:12:number", "10"}, {"items:12:age", "7"}, {"items:12:evicted", "12345"},
		{"items:12:evicted_time", "3"}, {"items:12:outofmemory", "2"},
	}
	slabs := []Stat{
		{"1:chunk_size", "96"}, {"1:total_pages", "1"}, {"1:total_chunks", "10922"}, {"1:used_chunks", "4"},
		{"5:chunk_size", "240"}, {"5:total_pages", "0"},
		{"12:chunk_size", "1184"}, {"12:total_pages", "2"}, {"12:total_chunks", "10"}, {"12:used_chunks", "10"},
		{"42:chunk_size", "524288"}, {"42:total_pages", "3"}, {"42:total_chunks", "3"}, {"42:used_chunks", "1"},
		{"active_slabs", "3"}, {"total_malloced", "6291456"},
	}
	var buf bytes.Buffer
	if err := WriteDisplay(&buf, SlabTable(items, slabs)); err != nil {
		t.Fatal(err)
	}
	// Lines as memcached-tool 1.6.18 prints them for these stats.
	want := "  #  Item_Size  Max_age   Pages   Count   Full?  Evicted Evict_Time OOM\n" +
		"  1      96B       195s       1       4      no        0        0    0\n" +
		" 12     1.2K         7s       2      10     yes    12345        3    2\n" +
		" 42   512.0K         0s       3       0      no        0        0    0\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestWriteTable(t *testing.T) {
	one := []Stat{{"pid", "42"}, {"curr_items", "3"}, {"version", "1.6.18"}}
	var buf bytes.Buffer
	WriteTable(&buf, StatsStyle, []string{"127.0.0.1:11211"}, [][]Stat{one})
	want := "#127.0.0.1:11211        Field         Value\n" +
		"                   curr_items             3\n" +
		"                          pid            42\n" +
		"                      version        1.6.18\n"
	if buf.String() != want {
		t.Errorf("one server: got\n%s\nwant\n%s", buf.String(), want)
	}
	buf.Reset()
	two := []Stat{{"pid", "7"}, {"curr_items", "12345678901234567"}}
	WriteTable(&buf, SettingsStyle, []string{"10.0.0.1:11211", "10.0.0.2:11211"}, [][]Stat{one, two})
	want = "                   Field 10.0.0.1:11211    10.0.0.2:11211\n" +
		"              curr_items              3 12345678901234567\n" +
		"                     pid             42                 7\n" +
		"                 version         1.6.18                 -\n"
	if buf.String() != want {
		t.Errorf("two servers: got\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestParseMetadump(t *testing.T) {
	k, ok := parseMetadump("key=b%2520x exp=-1 la=1796583434 cas=2 fetch=yes cls=12 size=70 new=1")
	if !ok || k.Key != "b%20x" || k.Exp != -1 || k.LA != 1796583434 || k.CAS != 2 || !k.Fetch || k.Class != 12 || k.Size != 70 {
		t.Errorf("got %+v, %v", k, ok)
	}
	for _, bad := range []string{"key=%zz exp=1", "exp=1 la=2", "key=a exp=x", "key=a junk"} {
		if _, ok := parseMetadump(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}
