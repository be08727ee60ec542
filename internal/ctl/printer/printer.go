// Package printer renders cairnctl results in etcdctl's output formats:
// simple, json, fields, table and protobuf, byte for byte as etcdctl 3.6.16.
//
// Printer has one method per kind of result. Every format embeds
// unsupported, which answers "<format> not supported as output format", and
// overrides the results it can show; a new command adds a method to Printer
// and to unsupported, then implements it in the formats that support it.
package printer

import (
	"encoding/json"
	"fmt"
	"io"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Printer shows command results. Methods write to the printer's stdout (and,
// for failures that etcdctl reports inline, stderr). An *UnsupportedError
// means the format cannot show that result (etcdctl exits 4).
type Printer interface {
	// Format is the --write-out name: simple, json, fields, table or protobuf.
	Format() string

	Get(clientv3.GetResponse) error
	Put(clientv3.PutResponse) error
	Del(clientv3.DeleteResponse) error
	Txn(clientv3.TxnResponse) error
	Watch(clientv3.WatchResponse) error

	EndpointHealth([]EndpointHealth) error
	EndpointStatus([]EndpointStatus) error
	EndpointHashKV([]EndpointHashKV) error
	MemberList(clientv3.MemberListResponse) error
	MemberAdd(MemberAdd) error
	// MemberRemove, MemberUpdate and MemberPromote get the ID the command
	// was given.
	MemberRemove(id uint64, r clientv3.MemberRemoveResponse) error
	MemberUpdate(id uint64, r clientv3.MemberUpdateResponse) error
	MemberPromote(id uint64, r clientv3.MemberPromoteResponse) error
	Alarm(clientv3.AlarmResponse) error
	LeasePrinter
	// DBStatus and DBHashKV are etcdutl's results (snapshot status, hashkv).
	DBStatus(DBStatus) error
	DBHashKV(DBHashKV) error
}

// New returns the printer for a --write-out value, or nil for an unknown one.
// hex prints byte strings and IDs in hexadecimal where etcdctl does.
func New(format string, hex bool, stdout, stderr io.Writer) Printer {
	out := output{w: stdout, errw: stderr, hex: hex}
	switch format {
	case "simple":
		return &Simple{unsupported: unsupported{"simple"}, output: out}
	case "json":
		return &jsonPrinter{unsupported: unsupported{"json"}, output: out}
	case "fields":
		return &Fields{unsupported: unsupported{"fields"}, output: out}
	case "table":
		return &tablePrinter{unsupported: unsupported{"table"}, output: out}
	case "protobuf":
		return &protobufPrinter{unsupported: unsupported{"protobuf"}, output: out}
	}
	return nil
}

// EndpointHealth is one endpoint's answer to `endpoint health`.
type EndpointHealth struct {
	Ep     string `json:"endpoint"`
	Health bool   `json:"health"`
	Took   string `json:"took"`
	Error  string `json:"error,omitempty"`
}

// EndpointStatus is one endpoint's answer to `endpoint status`.
type EndpointStatus struct {
	Ep   string                   `json:"Endpoint"`
	Resp *clientv3.StatusResponse `json:"Status"`
}

// EndpointHashKV is one endpoint's answer to `endpoint hashkv`.
type EndpointHashKV struct {
	Ep   string                   `json:"Endpoint"`
	Resp *clientv3.HashKVResponse `json:"HashKV"`
}

// MemberAdd is `member add`'s answer with what the command was given: the
// simple format prints the settings to start the new member with.
type MemberAdd struct {
	Name     string // the new member's name, as given
	PeerURLs string // --peer-urls, as given
	Resp     clientv3.MemberAddResponse
}

// DBStatus is `snapshot status` of a bbolt file, as etcdutl reports it.
type DBStatus struct {
	Hash      uint32 `json:"hash"`
	Revision  int64  `json:"revision"`
	TotalKey  int    `json:"totalKey"`
	TotalSize int64  `json:"totalSize"`
	Version   string `json:"version"` // meta/storageVersion, "" when absent
}

// DBHashKV is etcdutl's `hashkv` of a bbolt file.
type DBHashKV struct {
	Hash            uint32 `json:"hash"`
	HashRevision    int64  `json:"hashRevision"`
	CompactRevision int64  `json:"compactRevision"`
}

// UnsupportedError says a format cannot show a kind of result. Text, when
// set, replaces the usual message (etcdctl's protobuf printer names the Go
// type it cannot marshal).
type UnsupportedError struct{ Format, Text string }

func (e *UnsupportedError) Error() string {
	if e.Text != "" {
		return e.Text
	}
	return e.Format + " not supported as output format"
}

// output is what every format writes to.
type output struct {
	w    io.Writer // stdout
	errw io.Writer // stderr
	hex  bool
}

func (o output) printf(format string, a ...any) { fmt.Fprintf(o.w, format, a...) }
func (o output) println(a ...any)               { fmt.Fprintln(o.w, a...) }

// printJSON writes v as one line of encoding/json, as etcdctl does: the
// protobuf structs' json tags give the field names.
func (o output) printJSON(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintf(o.errw, "%v\n", err)
		return
	}
	o.println(string(b))
}

// unsupported is the default for every result: the format cannot show it.
type unsupported struct{ format string }

func (u unsupported) Format() string { return u.format }
func (u unsupported) err() error     { return &UnsupportedError{Format: u.format} }

func (u unsupported) Get(clientv3.GetResponse) error               { return u.err() }
func (u unsupported) Put(clientv3.PutResponse) error               { return u.err() }
func (u unsupported) Del(clientv3.DeleteResponse) error            { return u.err() }
func (u unsupported) Txn(clientv3.TxnResponse) error               { return u.err() }
func (u unsupported) Watch(clientv3.WatchResponse) error           { return u.err() }
func (u unsupported) EndpointHealth([]EndpointHealth) error        { return u.err() }
func (u unsupported) EndpointStatus([]EndpointStatus) error        { return u.err() }
func (u unsupported) EndpointHashKV([]EndpointHashKV) error        { return u.err() }
func (u unsupported) MemberList(clientv3.MemberListResponse) error { return u.err() }
func (u unsupported) MemberAdd(MemberAdd) error                    { return u.err() }
func (u unsupported) MemberRemove(uint64, clientv3.MemberRemoveResponse) error {
	return u.err()
}
func (u unsupported) MemberUpdate(uint64, clientv3.MemberUpdateResponse) error {
	return u.err()
}
func (u unsupported) MemberPromote(uint64, clientv3.MemberPromoteResponse) error {
	return u.err()
}
func (u unsupported) Alarm(clientv3.AlarmResponse) error { return u.err() }
func (u unsupported) DBStatus(DBStatus) error            { return u.err() }
func (u unsupported) DBHashKV(DBHashKV) error            { return u.err() }
