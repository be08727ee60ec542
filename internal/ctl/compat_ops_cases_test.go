package ctl_test

import "strings"

// utl is a case whose reference is etcdutl (offline, no endpoint).
func utl(args ...string) compatCase { return compatCase{args: args, util: true} }

// operatorCases are member, defrag, snapshot, the offline etcdutl commands
// and alarms; they run after every key-value case. The alarm cases raise
// NOSPACE (the servers run with a 1 MiB quota), so they come last.
func operatorCases() []compatCase {
	var cs []compatCase
	add := func(more ...compatCase) { cs = append(cs, more...) }

	// member list
	add(inFormats("member", "list")...)
	add(inFormats("member", "list", "--hex")...)
	add(c("member", "list", "--consistency", "s"), c("member", "list", "--consistency", "x"),
		c("member", "list", "--consistency", "L", "-w", "json"), c("member", "list", "extra"),
		c("member", "list", "--help").bare(), c("member", "list", "-w", "yaml"),
		c(dead, "--command-timeout=1s", "member", "list").bare(), c("mem", "li"))
	add(memberChangeCases()...)

	// move-leader: the cases that do not depend on the member ID (a lone
	// member's move to itself is checked against etcd in the e2e tests)
	add(c("move-leader"), c("move-leader", "zz"), c("move-leader", "1", "2"), c("move-leader", "1234"),
		c("move-leader", "1234", "-w", "fields"), c("move-leader", "--help").bare(),
		c(dead, "--command-timeout=1s", "move-leader", "1").bare())

	// defrag (online; -w is ignored)
	add(c("defrag"), c("defrag", "--cluster"), c("defrag", "-w", "json"), c("defrag", "extra"),
		c("--endpoints=127.0.0.1:1,{ep}", "--command-timeout=1s", "defrag").bare(),
		c(dead, "--command-timeout=1s", "defrag", "--cluster").bare())

	// snapshot save, then the offline commands on the reference's file
	add(c("snapshot", "save", "{tmp}/s.db"), c("snapshot", "save", "{tmp}/s2.db", "-w", "json"),
		c("snapshot", "save"), c("snapshot", "save", "a", "b"), c("snapshot", "save", "/nonexistent/x.db"),
		c("--endpoints={ep},{ep}", "snapshot", "save", "{tmp}/m.db").bare(),
		c(dead, "--command-timeout=1s", "snapshot", "save", "{tmp}/dead.db").bare())
	// Not compared: `snapshot` (group help), which lists etcdutl's status too.
	for _, f := range append(formats, "yaml") {
		add(utl("snapshot", "status", "{ref}/s.db", "-w", f))
	}
	add(utl("snapshot", "status"), utl("snapshot", "status", "a", "b"), utl("snapshot", "status", "{ref}/missing.db"),
		utl("snapshot", "status", "{ref}"))
	for _, f := range formats {
		k := utl("hashkv", "{tmp}/h.db", "-w", f)
		k.copy = [2]string{"s.db", "h.db"}
		add(k)
	}
	for _, rev := range []string{"3", "8", "100000", "-1"} {
		k := utl("hashkv", "{tmp}/h.db", "--rev", rev)
		k.copy = [2]string{"s.db", "h.db"}
		add(k)
	}
	add(utl("hashkv", "{ref}/missing.db"), utl("defrag", "--data-dir", "{ref}/none"))

	// alarms: none, then NOSPACE raised by one put over the quota
	add(inFormats("alarm", "list")...)
	add(c("alarm", "list", "x"), c("alarm", "disarm", "x"), c("alarm", "disarm"), c("alarm", "disarm", "-w", "json"),
		c("alarm", "disarm", "-w", "table"), c("alarm", "disarm", "-w", "protobuf"), c("alarm").bare(),
		c("alarm", "disarm", "--help").bare())
	big := strings.Repeat("x", 1100000)
	add(c("put", "big").in(big))
	add(inFormats("alarm", "list")...)
	add(c("alarm", "list", "--hex", "-w", "fields"), c("alarm", "list", "--hex", "-w", "json"),
		c("endpoint", "health"), c("put", "small", "v"), c("del", "a"),
		c("alarm", "disarm"), c("alarm", "list"), c("put", "small", "v"),
		c("put", "big").in(big), c("alarm", "disarm", "-w", "json"),
		c("put", "big").in(big), c("alarm", "disarm", "-w", "fields"),
		c("alarm", "list", "-w", "json"))
	return cs
}
