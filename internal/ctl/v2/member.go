package ctlv2

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/urfave/cli"
	client "go.etcd.io/etcd/client/v2"
)

func (r *runner) memberCommand() cli.Command {
	return cli.Command{
		Name:  "member",
		Usage: "member add, remove and list subcommands",
		Subcommands: []cli.Command{
			{Name: "list", Usage: "enumerate existing cluster members", ArgsUsage: " ",
				Action: r.withMembers(0, "No arguments accepted\n", r.memberList)},
			{Name: "add", Usage: "add a new member to the etcd cluster", ArgsUsage: "<name> <peerURL>",
				Action: r.withMembers(2, "Provide a name and a single member peerURL\n", r.memberAdd)},
			{Name: "remove", Usage: "remove an existing member from the etcd cluster", ArgsUsage: "<memberID>",
				Action: r.withMembers(1, "Provide a single member ID\n", r.memberRemove)},
			{Name: "update", Usage: "update an existing member in the etcd cluster", ArgsUsage: "<memberID> <peerURLs>",
				Action: r.withMembers(2, "Provide an ID and a list of comma separated peerURL (0xabcd http://example.com,http://example1.com)\n", r.memberUpdate)},
		},
	}
}

// withMembers is the action of a member subcommand: exactly nargs
// arguments (else usage on stderr, exit 1), then fn with the members API
// and a context bounded by --total-timeout.
func (r *runner) withMembers(nargs int, usage string,
	fn func(ctx context.Context, m client.MembersAPI, args cli.Args) error) func(c *cli.Context) error {
	return func(c *cli.Context) error {
		if len(c.Args()) != nargs {
			return r.failf(ExitBadArgs, "%s", usage)
		}
		m, err := r.membersAPI(c)
		if err != nil {
			return err
		}
		ctx, cancel := r.totalTimeout(c)
		defer cancel()
		return fn(ctx, m, c.Args())
	}
}

// memberList prints one line per member, marking the leader; a member
// that has not started yet shows only its peer URLs.
func (r *runner) memberList(ctx context.Context, m client.MembersAPI, _ cli.Args) error {
	members, err := m.List(ctx)
	if err != nil {
		return r.failf(ExitBadArgs, "%s\n", err.Error())
	}
	leader, err := m.Leader(ctx)
	if err != nil {
		fmt.Fprintln(r.env.Stderr, "Failed to get leader: ", err)
		return &exit{ExitBadArgs}
	}
	for _, mb := range members {
		if mb.Name == "" {
			r.outf("%s[unstarted]: peerURLs=%s\n", mb.ID, strings.Join(mb.PeerURLs, ","))
			continue
		}
		r.outf("%s: name=%s peerURLs=%s clientURLs=%s isLeader=%v\n", mb.ID, mb.Name,
			strings.Join(mb.PeerURLs, ","), strings.Join(mb.ClientURLs, ","), mb.ID == leader.ID)
	}
	return nil
}

// memberAdd adds a member by peer URL and prints the variables its first
// start needs.
func (r *runner) memberAdd(ctx context.Context, m client.MembersAPI, args cli.Args) error {
	added, err := m.Add(ctx, args[1])
	if err != nil {
		return r.failf(ExitBadArgs, "%s\n", err.Error())
	}
	name := args[0]
	r.outf("Added member named %s with ID %s to cluster\n", name, added.ID)
	members, err := m.List(ctx)
	if err != nil {
		return r.failf(ExitBadArgs, "%s\n", err.Error())
	}
	var conf []string
	for _, mb := range members {
		n := mb.Name
		if mb.ID == added.ID {
			n = name
		}
		for _, u := range mb.PeerURLs {
			conf = append(conf, fmt.Sprintf("%s=%s", n, u))
		}
	}
	r.outf("\n")
	r.outf("ETCD_NAME=%q\n", name)
	r.outf("ETCD_INITIAL_CLUSTER=%q\n", strings.Join(conf, ","))
	r.outf("ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n")
	return nil
}

// memberRemove removes a member by ID, after checking the ID is known (and
// hinting when a member's name was given instead).
func (r *runner) memberRemove(ctx context.Context, m client.MembersAPI, args cli.Args) error {
	id := args[0]
	members, err := m.List(ctx)
	if err != nil {
		fmt.Fprintln(r.env.Stderr, "Error while verifying ID against known members:", err.Error())
		return &exit{ExitBadArgs}
	}
	found := false
	for _, mb := range members {
		if mb.ID == id {
			found = true
		}
		if mb.Name == id {
			fmt.Fprintf(r.env.Stderr, "Found a member named %s; if this is correct, please use its ID, eg:\n\tetcdctl member remove %s\n", mb.Name, mb.ID)
			fmt.Fprintf(r.env.Stderr, "For more details, read the documentation at https://github.com/etcd-io/etcd/blob/master/Documentation/runtime-configuration.md#remove-a-member\n\n")
		}
	}
	if !found {
		return r.failf(ExitBadArgs, "Couldn't find a member in the cluster with an ID of %s.\n", id)
	}
	if err := m.Remove(ctx, id); err != nil {
		return r.failf(ExitBadArgs, "Received an error trying to remove member %s: %s", id, err.Error())
	}
	r.outf("Removed member %s from cluster\n", id)
	return nil
}

// memberUpdate replaces a member's peer URLs (comma-separated).
func (r *runner) memberUpdate(ctx context.Context, m client.MembersAPI, args cli.Args) error {
	if err := m.Update(ctx, args[0], strings.Split(args[1], ",")); err != nil {
		return r.failf(ExitBadArgs, "%s\n", err.Error())
	}
	r.outf("Updated member with ID %s in cluster\n", args[0])
	return nil
}

func (r *runner) clusterHealthCommand() cli.Command {
	return cli.Command{
		Name:      "cluster-health",
		Usage:     "check the health of the etcd cluster",
		ArgsUsage: " ",
		Flags: []cli.Flag{
			cli.BoolFlag{Name: "forever, f", Usage: "forever check the health every 10 second until CTRL+C"},
		},
		Action: r.clusterHealth,
	}
}

// healthInterval is the pause between rounds of cluster-health --forever.
var healthInterval = 10 * time.Second

// clusterHealth lists the members (no sync) and asks each one's /health on
// its client URLs in turn; exit 0 when every member is healthy, else 5.
func (r *runner) clusterHealth(c *cli.Context) error {
	forever := c.Bool("forever")
	tr, err := r.transport(c)
	if err != nil {
		return r.fail(ExitServerError, err)
	}
	hc := http.Client{Transport: tr}
	cln, err := r.unsyncedClient(c)
	if err != nil {
		return err
	}
	ctx, stop := r.interrupt()
	defer stop()
	members, err := client.NewMembersAPI(cln).List(ctx)
	if err != nil {
		r.outln("cluster may be unhealthy: failed to list members")
		return r.fail(ExitServerError, err)
	}
	for {
		healthy := 0
		for _, m := range members {
			if r.memberHealthy(&hc, m) {
				healthy++
			}
		}
		switch healthy {
		case len(members):
			r.outln("cluster is healthy")
		case 0:
			r.outln("cluster is unavailable")
		default:
			r.outln("cluster is degraded")
		}
		if !forever {
			if healthy == len(members) {
				return nil
			}
			return &exit{ExitClusterNotHealthy}
		}
		r.outf("\nnext check after 10 second...\n\n")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(healthInterval):
		}
	}
}

// memberHealthy prints the member's line and says whether it is healthy.
func (r *runner) memberHealthy(hc *http.Client, m client.Member) bool {
	if len(m.ClientURLs) == 0 {
		r.outf("member %s is unreachable: no available published client urls\n", m.ID)
		return false
	}
	for _, u := range m.ClientURLs {
		resp, err := hc.Get(u + "/health")
		if err != nil {
			r.outf("failed to check the health of member %s on %s: %v\n", m.ID, u, err)
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			r.outf("failed to check the health of member %s on %s: %v\n", m.ID, u, err)
			continue
		}
		var asString struct{ Health string }
		var asBool struct{ Health bool }
		err = json.Unmarshal(body, &asString)
		if err != nil {
			err = json.Unmarshal(body, &asBool)
		}
		if err != nil {
			r.outf("failed to check the health of member %s on %s: %v\n", m.ID, u, err)
			continue
		}
		if asString.Health == "true" || asBool.Health {
			r.outf("member %s is healthy: got healthy result from %s\n", m.ID, u)
			return true
		}
		r.outf("member %s is unhealthy: got unhealthy result from %s\n", m.ID, u)
		return false
	}
	r.outf("member %s is unreachable: %v are all unreachable\n", m.ID, m.ClientURLs)
	return false
}
