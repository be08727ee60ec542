package e2e

import (
	"net"
	"strings"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// testDNS is a tiny authoritative DNS server on a loopback UDP port for
// the --discovery-srv tests: it answers SRV and A questions from fixed
// records and NXDOMAIN for any other name. cairn and cairnctl send their
// lookups to it when started with CAIRN_TEST_DNS_SERVER=<Addr>.
type testDNS struct {
	Addr string
	srv  map[string][]dnsmessage.SRVResource // lower-case FQDN → records
	a    map[string][4]byte
	pc   net.PacketConn
}

type srvRecord struct {
	target string // FQDN with the trailing dot
	port   uint16
}

// startTestDNS serves the given SRV records (name → targets) and A records
// (name → IPv4) until the test ends. Names are FQDNs with the final dot.
func startTestDNS(t *testing.T, srv map[string][]srvRecord, a map[string]string) *testDNS {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &testDNS{Addr: pc.LocalAddr().String(), srv: map[string][]dnsmessage.SRVResource{}, a: map[string][4]byte{}, pc: pc}
	for name, rs := range srv {
		for _, r := range rs {
			d.srv[strings.ToLower(name)] = append(d.srv[strings.ToLower(name)], dnsmessage.SRVResource{
				Priority: 0, Weight: 10, Port: r.port, Target: dnsmessage.MustNewName(r.target)})
		}
	}
	for name, ip := range a {
		d.a[strings.ToLower(name)] = [4]byte(net.ParseIP(ip).To4())
	}
	t.Cleanup(func() { pc.Close() })
	go d.serve()
	return d
}

func (d *testDNS) serve() {
	buf := make([]byte, 4096)
	for {
		n, from, err := d.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if out, ok := d.answer(buf[:n]); ok {
			d.pc.WriteTo(out, from)
		}
	}
}

// answer builds the reply to one query (one question, as Go's resolver
// sends).
func (d *testDNS) answer(q []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil {
		return nil, false
	}
	question, err := p.Question()
	if err != nil {
		return nil, false
	}
	name := strings.ToLower(question.Name.String())
	_, hasA := d.a[name]
	_, hasSRV := d.srv[name]
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	if !hasA && !hasSRV {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if b.StartQuestions() != nil || b.Question(question) != nil || b.StartAnswers() != nil {
		return nil, false
	}
	rrh := dnsmessage.ResourceHeader{Name: question.Name, Class: dnsmessage.ClassINET, TTL: 5}
	switch question.Type {
	case dnsmessage.TypeSRV:
		for _, r := range d.srv[name] {
			if b.SRVResource(rrh, r) != nil {
				return nil, false
			}
		}
	case dnsmessage.TypeA:
		if ip, ok := d.a[name]; ok {
			if b.AResource(rrh, dnsmessage.AResource{A: ip}) != nil {
				return nil, false
			}
		}
	}
	out, err := b.Finish()
	return out, err == nil
}
