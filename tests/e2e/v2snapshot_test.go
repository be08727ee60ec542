package e2e

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tests/framework"
)

// TestV2WatchSnapshotCatchUp: a member of a 3-member cluster is stopped
// while the others take more v2 writes than the history holds (1000
// events) and than --snapshot-count, so on restart it catches up by the
// leader's snapshot. Its watches (long-poll and stream) end when it stops;
// after the install, every waitIndex of the history answers with the same
// event as on a member that never stopped, an index older than the
// history gives the same error 401 (HTTP 400; etcd 3.4 too: its snapshot carries
// the event history), watches opened after the restart see new writes and
// expiries, and keys whose TTL came in the snapshot expire on it.
func TestV2WatchSnapshotCatchUp(t *testing.T) {
	c := framework.NewCluster(t, []string{framework.Cairn(t)}, 3,
		"--snapshot-count", "100", "--snapshot-catchup-entries", "20")
	c.Start(60 * time.Second)
	lead := c.Leader(30 * time.Second)
	src, lagger := c.Members[lead], c.Members[(lead+1)%3]
	other := c.Members[(lead+2)%3]

	start := v2Index(t, v2Put(t, src.Client, "/w/start", "value", "0"))
	waitUntil(t, "every member to apply the first write", func() bool {
		for _, m := range c.Members {
			if _, idx := v2GetIndex(t, m.Client, "/"); idx < start {
				return false
			}
		}
		return true
	})
	poll := openV2Watch(t, lagger.Client, "/w/missed?wait=true")
	stream := openV2Watch(t, lagger.Client, "/w?wait=true&recursive=true&stream=true")
	v2Put(t, src.Client, "/w/seen", "value", "1")
	if l := stream.next(15 * time.Second); !strings.Contains(l, `"key":"/w/seen"`) {
		t.Fatalf("stream before the stop: %s", l)
	}
	lagger.Stop()
	<-lagger.Done()
	for name, w := range map[string]*v2Watch{"long-poll": poll, "stream": stream} {
		if l := w.next(15 * time.Second); l != "<end>" {
			t.Fatalf("%s watch on the stopped member: %s", name, l)
		}
	}

	// More writes than the history holds, then the keys the checks use,
	// then enough writes for a snapshot to hold them.
	v2Burst(t, c, 1100, "/w/b/k%03d", 200)
	v2Put(t, src.Client, "/w/_hidden", "value", "h")
	ttlAt := time.Now()
	ttls := []int{8, 16}
	for _, ttl := range ttls {
		v2Put(t, src.Client, fmt.Sprintf("/w/ttl/%d", ttl), "value", "t", "ttl", strconv.Itoa(ttl))
	}
	missed := v2Index(t, v2Put(t, src.Client, "/w/missed", "value", "m"))
	v2Burst(t, c, 150, "/w/c/k%03d", 50)
	_, head := v2GetIndex(t, src.Client, "/")

	t.Logf("writes done %v after the TTL keys were set", time.Since(ttlAt))
	lagger.Start()
	lagger.WaitReady(60 * time.Second)
	waitUntil(t, "the restarted member to apply the writes", func() bool {
		_, idx := v2GetIndex(t, lagger.Client, "/")
		return idx >= head
	})
	if !lagger.WaitLog("applied snapshot", 10*time.Second) {
		t.Fatalf("the member did not catch up by snapshot:\n%s", lagger.Log())
	}
	t.Logf("caught up %v after the TTL keys were set", time.Since(ttlAt))
	// Watches opened after the install, before anything else is written.
	after := openV2Watch(t, lagger.Client, "/w/after?wait=true")
	live := openV2Watch(t, lagger.Client, "/w?wait=true&recursive=true&stream=true")
	live2 := openV2Watch(t, other.Client, "/w?wait=true&recursive=true&stream=true")

	// The long-poll watch of before the stop, resumed from a recent index,
	// finds the event it missed; from its original index it is too old.
	w := openV2Watch(t, lagger.Client, fmt.Sprintf("/w/missed?wait=true&waitIndex=%d", head-500))
	if l := w.next(15 * time.Second); w.resp.StatusCode != 200 || !strings.Contains(l, fmt.Sprintf(`"value":"m","modifiedIndex":%d`, missed)) {
		t.Fatalf("waitIndex %d on the caught-up member: %d %s", head-500, w.resp.StatusCode, l)
	}
	gone := fmt.Sprintf("/w/missed?wait=true&waitIndex=%d", start+2)
	if code, body := v2Get(t, lagger.Client, gone); code != 400 || !strings.Contains(body, `"errorCode":401`) {
		t.Fatalf("waitIndex %d (older than the history) on the caught-up member: %d %s", start+2, code, body)
	}

	// The history matches a member that never stopped, index by index,
	// including where it starts. (The TTL keys may expire meanwhile: an
	// answer is retried until both members have applied the same events.)
	sameAnswer := func(q string) {
		t.Helper()
		var a, b string
		deadline := time.Now().Add(15 * time.Second)
		for {
			ca, ba := v2Get(t, lagger.Client, q)
			cb, bb := v2Get(t, other.Client, q)
			a, b = fmt.Sprintf("%d %s", ca, ttlAnyRe.ReplaceAllString(ba, "")), fmt.Sprintf("%d %s", cb, ttlAnyRe.ReplaceAllString(bb, ""))
			if a == b {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s:\ncaught-up member: %s\nother member:     %s", q, a, b)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for i := head - 1000; i <= head; i++ {
		sameAnswer(fmt.Sprintf("/?wait=true&recursive=true&waitIndex=%d", i))
	}
	sameAnswer(gone)

	t.Logf("history compared %v after the TTL keys were set", time.Since(ttlAt))
	// Keys whose TTL came in the snapshot expire on the caught-up member.
	var pending []int
	for _, ttl := range ttls {
		if code, body := v2Get(t, lagger.Client, fmt.Sprintf("/w/ttl/%d", ttl)); code == 200 && strings.Contains(body, `"ttl":`) {
			pending = append(pending, ttl)
		}
	}
	if len(pending) == 0 {
		t.Fatalf("every TTL key expired before the member caught up (%v after they were set): too slow to check", time.Since(ttlAt))
	}
	v2Put(t, src.Client, "/w/after", "value", "a")
	if l := after.next(15 * time.Second); !strings.Contains(l, `"action":"set","node":{"key":"/w/after","value":"a"`) {
		t.Fatalf("long-poll watch opened after the install: %s", l)
	}
	// Both streams see the write and the expiries (in an order that depends
	// on when the sweeps ran, so as a set).
	want := []string{`"action":"set","node":{"key":"/w/after","value":"a"`}
	for _, ttl := range pending {
		want = append(want, fmt.Sprintf(`"action":"expire","node":{"key":"/w/ttl/%d"`, ttl))
	}
	deadline := ttlAt.Add(time.Duration(ttls[len(ttls)-1]+15) * time.Second)
	for name, w := range map[string]*v2Watch{"caught-up member": live, "other member": live2} {
		var got []string
		missing := append([]string(nil), want...)
		for len(missing) > 0 {
			l := w.next(max(time.Until(deadline), time.Second))
			if l == "<none>" || l == "<end>" {
				t.Fatalf("stream on the %s: got %q, still missing %q", name, got, missing)
			}
			got = append(got, l)
			for i, m := range missing {
				if strings.Contains(l, m) {
					missing = append(missing[:i], missing[i+1:]...)
					break
				}
			}
		}
	}
	for _, ttl := range pending {
		if code, body := v2Get(t, lagger.Client, fmt.Sprintf("/w/ttl/%d", ttl)); code != 404 {
			t.Fatalf("/w/ttl/%d on the caught-up member after its expiry: %d %s", ttl, code, body)
		}
	}
	sameAnswer("/w?recursive=true&sorted=true")
}

var etcdIndexRe = regexp.MustCompile(`"modifiedIndex":(\d+)`)

// v2Index is the node's modifiedIndex in a write's answer.
func v2Index(t *testing.T, body string) uint64 {
	t.Helper()
	m := etcdIndexRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no modifiedIndex in %s", body)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}

// v2GetIndex is a v2 GET's status and X-Etcd-Index.
func v2GetIndex(t *testing.T, base, p string) (int, uint64) {
	t.Helper()
	resp, err := http.Get(base + "/v2/keys" + p)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	n, _ := strconv.ParseUint(resp.Header.Get("X-Etcd-Index"), 10, 64)
	return resp.StatusCode, n
}

// v2Burst sets n keys (format applied to i%space) through the running
// members of c from 8 clients, retrying a failed write (a leader change on
// a loaded machine) for up to 30 s.
func v2Burst(t *testing.T, c *framework.Cluster, n int, format string, space int) {
	t.Helper()
	var left atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := left.Add(-1)
				if i < 0 {
					return
				}
				p := fmt.Sprintf(format, int(i)%space)
				deadline := time.Now().Add(30 * time.Second)
				for {
					err := v2TryPut(c, p, fmt.Sprintf("v%d", i))
					if err == nil {
						break
					}
					if time.Now().After(deadline) {
						errs <- fmt.Errorf("PUT %s: %w", p, err)
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// v2TryPut sets p through the first running member that accepts it.
func v2TryPut(c *framework.Cluster, p, value string) error {
	var last error
	for _, m := range c.Members {
		select {
		case <-m.Done():
			continue
		default:
		}
		req, _ := http.NewRequest("PUT", m.Client+"/v2/keys"+p, strings.NewReader(form("value", value).Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			last = err
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			return nil
		}
		last = fmt.Errorf("%d %s", resp.StatusCode, b)
	}
	return last
}
