package ctl_test

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// memberChangeCases are member add/remove/update/promote on the fixture's
// lone member: every argument and URL error, the server's refusals (a peer
// URL in use, unknown IDs, promoting a voter, removing the only voter, a
// second learner, a learner not in sync), and each output format of the
// changes a lone member can make (a learner added, updated and removed;
// its own peer URL updated to itself). They leave no member behind.
func memberChangeCases() []compatCase {
	var cs []compatCase
	add := func(more ...compatCase) { cs = append(cs, more...) }

	// Usage, and arguments checked before connecting.
	add(c("member").bare(), c("member", "add", "--help").bare(), c("member", "remove", "--help").bare(),
		c("member", "update", "--help").bare(), c("member", "promote", "--help").bare())
	add(c("member", "add"), c("member", "add", "--peer-urls", "http://127.0.0.1:24000"), c("member", "add", "a"),
		c("member", "add", "a", "--peer-urls="), c("member", "add", "a", "b", "c"),
		c("member", "add", "a", "b", "http://127.0.0.1:24000"), c("member", "add", "a", "http://x", "httpy"),
		c("member", "add", "a", "--peer-urls", "foo"), c("member", "add", "a", "--peer-urls", "127.0.0.1:24000"),
		c("member", "add", "a", "--peer-urls", "http://127.0.0.1:24000/path"),
		c("member", "add", "a", "--peer-urls", "http://127.0.0.1:x"),
		c("member", "add", "a", "--peer-urls", "http://127.0.0.1:24000,"),
		c("member", "add", "a", "--peer-urls", "ftp://127.0.0.1:24000", "--learner"),
		c(dead, "--command-timeout=1s", "member", "add", "a", "--peer-urls", "foo").bare())
	for _, sub := range []string{"remove", "promote"} {
		add(c("member", sub), c("member", sub, "1", "2"), c("member", sub, "zz"), c("member", sub, "0x1"),
			c("member", sub, "10000000000000000"), c("member", sub, "--", "-1"))
	}
	add(c("member", "update"), c("member", "update", "1"), c("member", "update", "1", "--peer-urls="),
		c("member", "update", "zz", "--peer-urls", "http://127.0.0.1:24000"),
		c("member", "update", "1", "2", "--peer-urls", "http://127.0.0.1:24000"),
		c("member", "update", "1", "--peer-urls", "http://127.0.0.1:24000,foo"))

	// The server's refusals.
	add(c("member", "add", "a", "--peer-urls", "http://127.0.0.1:12380"),
		c("member", "add", "a", "--learner", "--peer-urls", "http://127.0.0.1:12380"),
		c("member", "remove", "1"), c("member", "remove", "0"), c("member", "remove", "{self}"),
		c("member", "update", "1", "--peer-urls", "http://127.0.0.1:24000"),
		c("member", "promote", "1"), c("member", "promote", "{self}"))
	// A no-op update of its own peer URL, in every format (fields and table
	// refuse after the change is made).
	add(inFormats("member", "update", "{self}", "--peer-urls", "http://127.0.0.1:12380")...)

	// A learner's life, once per output format of add and remove. A
	// runtime member's ID depends on the second it is added in, so each add
	// starts on a fresh second on both sides.
	learner := func(fmtAdd, fmtRm string, port int) {
		a := c("member", "add", fmt.Sprintf("l%d", port), "--learner",
			"--peer-urls", fmt.Sprintf("http://127.0.0.1:%d,http://127.0.0.2:%d", port, port), "-w", fmtAdd)
		a.alignSecond = true
		add(a)
		add(c("member", "remove", "{learner}", "-w", fmtRm))
	}
	learner("simple", "json", 24100)
	learner("json", "protobuf", 24101)
	learner("protobuf", "table", 24102)
	learner("fields", "fields", 24103)
	a := c("member", "add", "l", "--learner", "--peer-urls", "http://127.0.0.1:24104")
	a.alignSecond = true
	// The voter reusing l's URL starts on a fresh second too: within l's
	// second its derived ID would be l's ("member ID already exist"), after
	// it the URL clash is found ("Peer URLs already exists"); aligned, both
	// sides see the second answer.
	v := c("member", "add", "v", "--peer-urls", "http://127.0.0.1:24104")
	v.alignSecond = true
	add(a, c("member", "add", "l2", "--learner", "--peer-urls", "http://127.0.0.1:24105"), v)
	add(inFormats("member", "list")...)
	add(c("member", "promote", "{learner}"), c("member", "promote", "{learner}", "-w", "json"))
	for _, f := range formats {
		add(c("member", "update", "{learner}", "--peer-urls", "http://127.0.0.1:24106,http://127.0.0.1:24107", "-w", f))
	}
	add(c("member", "list"), c("member", "remove", "{learner}"), c("member", "remove", "{learner}"), c("member", "list"))
	return cs
}

// memberIDs returns, in hex, the ID of the member serving ep and of the
// cluster's learner ("none" without one), for the {self} and {learner}
// placeholders.
func memberIDs(ep string) (self, learner string, err error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second})
	if err != nil {
		return "", "", err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ml, err := cli.MemberList(ctx)
	if err != nil {
		return "", "", err
	}
	learner = "none"
	for _, m := range ml.Members {
		if m.IsLearner {
			learner = fmt.Sprintf("%x", m.ID)
		}
	}
	return fmt.Sprintf("%x", ml.Header.MemberId), learner, nil
}

// waitNewSecond returns just after the wall clock enters a new second, so
// the next commands on both sides run within the same second.
func waitNewSecond() {
	now := time.Now()
	<-time.After(now.Truncate(time.Second).Add(time.Second + 20*time.Millisecond).Sub(now))
}
