package mctool

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
)

// changedServer lists two keys in its metadump with the expiry they had
// then, and answers mg as if both were stored again since: "never" now
// expires in an hour, the one due in a minute never expires.
func changedServer(t *testing.T, now int64) string {
	return testutil.FakeServer(t, func(nc net.Conn) {
		br := bufio.NewReader(nc)
		for {
			req, err := br.ReadString('\n')
			if err != nil {
				return
			}
			f := strings.Fields(req)
			switch {
			case len(f) > 1 && f[0] == "mg":
				ttl := map[string]int{"never": 3600, "soon": -1}[f[1]]
				reply := "VA 1 f3"
				for _, flag := range f[2:] {
					if flag == "t" {
						reply += fmt.Sprintf(" t%d", ttl)
					}
				}
				io.WriteString(nc, reply+"\r\nv\r\n")
			case strings.HasPrefix(req, "lru_crawler metadump"):
				fmt.Fprintf(nc, "key=never exp=-1 la=0 cas=1 fetch=no cls=1 size=60\n")
				fmt.Fprintf(nc, "key=soon exp=%d la=0 cas=2 fetch=no cls=1 size=60\n", now+60)
				io.WriteString(nc, "END\r\n")
			}
		}
	})
}

// An item stored again between metadump and the read of its value keeps
// the expiry it has when read, not the one metadump listed.
func TestWalkExpiryOfItemChangedMeanwhile(t *testing.T) {
	now := time.Now().Unix()
	c := dial(t, changedServer(t, now))
	got := map[string]int64{}
	if _, err := c.Walk(0, func(r Record) error {
		got[r.Key] = r.Exp
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if exp := got["never"]; exp < now+3600-5 || exp > now+3600+5 {
		t.Errorf("key stored again with a TTL of 3600s: Exp %d, want about %d", exp, now+3600)
	}
	if exp := got["soon"]; exp != 0 {
		t.Errorf("key stored again without expiry: Exp %d, want 0", exp)
	}
}
