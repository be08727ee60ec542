package ctlv2

import (
	"encoding/json"
	"fmt"

	"github.com/urfave/cli"
	client "go.etcd.io/etcd/client/v2"
)

// printResponse prints a keys response in the --output format:
//   - simple: the node's value; for a delete, "PrevNode.Value: <old>";
//   - extended: header lines (key, indexes, previous value, TTL, the
//     X-Etcd-Index), then, except for a delete, a blank line and the value;
//   - json: the client's Response encoded on one line.
//
// Any other format prints "Unsupported output format: <f>" on stderr and
// still succeeds, as in etcdctl.
func (r *runner) printResponse(c *cli.Context, resp *client.Response) {
	switch format := c.GlobalString("output"); format {
	case "simple":
		if resp.Action != "delete" {
			r.outln(resp.Node.Value)
		} else {
			r.outln("PrevNode.Value:", resp.PrevNode.Value)
		}
	case "extended":
		r.outln("Key:", resp.Node.Key)
		r.outln("Created-Index:", resp.Node.CreatedIndex)
		r.outln("Modified-Index:", resp.Node.ModifiedIndex)
		if resp.PrevNode != nil {
			r.outln("PrevNode.Value:", resp.PrevNode.Value)
		}
		r.outln("TTL:", resp.Node.TTL)
		r.outln("Index:", resp.Index)
		if resp.Action != "delete" {
			r.outln("")
			r.outln(resp.Node.Value)
		}
	case "json":
		b, err := json.Marshal(resp)
		if err != nil {
			fmt.Fprintln(r.env.Stderr, err)
			return
		}
		r.outln(string(b))
	default:
		fmt.Fprintln(r.env.Stderr, "Unsupported output format:", format)
	}
}
