package framework

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// PeerNet is a set of TCP proxies, one in front of each member's peer
// listener, through which the members' peer traffic flows, and the rules
// (partitions, isolation, delay) the proxies enforce.
//
// A member listens on its real peer port (Member.ListenPeer) and advertises
// its proxy's address (Member.Peer, in --initial-advertise-peer-urls and
// --initial-cluster), so every connection another member opens to it lands
// on the proxy. Member IDs derive from the advertised URLs, so the proxy
// address must be advertised the same way on every start.
//
// Peer connections are plain HTTP/1.1. Stream GETs, pipeline POSTs and
// snapshot POSTs carry "X-Server-From: <hex member ID>"; probing, /version
// and /members requests carry none. A proxy reads the request heads on a
// connection until a stream GET or a body of unknown length (a snapshot),
// then splices bytes both ways; a connection's sender never changes. Which member a hex ID is comes from
// SetMemberID.
//
// Messages from A to B travel on connections B opened to A's proxy (the
// stream B reads) and on connections A opened to B's proxy (the pipeline and
// A's own stream dial), so a rule on the pair {A, B} is enforced at both
// proxies: connections between the two are closed, and new ones are closed
// as soon as their first request names the sender. Connections whose
// sender is not known yet are cut only when their destination is isolated.
//
// Threading: every method may be called from any goroutine.
type PeerNet struct {
	mu       sync.Mutex
	proxies  map[string]*PeerProxy
	names    map[uint64]string        // member ID → member name
	cut      map[[2]string]bool       // unordered pairs, sorted
	oneway   map[[2]string]bool       // ordered pairs {from, to}: messages from → to blocked
	drop     map[string]float64       // per member: probability a chunk to or from it is dropped
	snaps    map[string]int           // per member: snapshot requests sent to it
	isolated map[string]bool          // member names cut from everyone
	delay    map[string]time.Duration // per member: added to each chunk to or from it
	jitter   map[string]time.Duration // per member: ± added to delay
	conns    map[*proxyConn]struct{}  // open proxied connections
	stats    PeerNetStats             // counters, see PeerNetStats
	closed   bool                     // set by Close; no new goroutines after
	wg       sync.WaitGroup           // every goroutine the net started
	rnd      *rand.Rand               // jitter; guarded by mu
}

// PeerNetStats counts what the proxies did since the PeerNet was made.
type PeerNetStats struct {
	Accepted   int // connections accepted
	Identified int // connections whose sender became known
	Refused    int // connections closed at accept or identification because a rule blocks them
	Cut        int // open connections closed when a rule was set
	DialFailed int // connections closed because the member's real listener did not answer
	Dropped    int // connections closed at a dropped chunk
}

// PeerProxy is one member's proxy.
type PeerProxy struct {
	Name   string // member name
	Addr   string // host:port the proxy listens on; advertise "http://"+Addr
	Target string // host:port of the member's real peer listener

	net *PeerNet
	ln  net.Listener
}

// proxyConn is one proxied connection: down is the side a remote member
// dialled, up the connection to the destination member.
type proxyConn struct {
	dst  string
	down net.Conn

	mu     sync.Mutex
	up     net.Conn
	src    uint64 // sender's member ID, 0 until a request names it
	stream bool   // a stream GET: its messages flow from dst to src
	closed bool
	done   chan struct{} // closed by close
}

// NewPeerNet returns an empty PeerNet.
func NewPeerNet() *PeerNet {
	return &PeerNet{
		proxies:  map[string]*PeerProxy{},
		names:    map[uint64]string{},
		cut:      map[[2]string]bool{},
		oneway:   map[[2]string]bool{},
		drop:     map[string]float64{},
		snaps:    map[string]int{},
		isolated: map[string]bool{},
		delay:    map[string]time.Duration{},
		jitter:   map[string]time.Duration{},
		conns:    map[*proxyConn]struct{}{},
		rnd:      rand.New(rand.NewPCG(1, 2)),
	}
}

// AddProxy starts a proxy for member name listening on listen (host:port;
// port 0 picks one) and forwarding to target, the member's real peer
// listener (which need not be up yet).
func (n *PeerNet) AddProxy(name, listen, target string) (*PeerProxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("peer proxy for %s: %w", name, err)
	}
	p := &PeerProxy{Name: name, Addr: ln.Addr().String(), Target: target, net: n, ln: ln}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		ln.Close()
		return nil, errors.New("peer net closed")
	}
	if _, dup := n.proxies[name]; dup {
		ln.Close()
		return nil, fmt.Errorf("peer proxy for %s already exists", name)
	}
	n.proxies[name] = p
	n.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// SetMemberID tells the proxies which member a hex X-Server-From names.
func (n *PeerNet) SetMemberID(name string, id uint64) {
	n.mu.Lock()
	n.names[id] = name
	n.mu.Unlock()
	n.enforce()
}

// Partition cuts every link between a member of a and a member of b, both
// ways, until Heal.
func (n *PeerNet) Partition(a, b []string) {
	n.mu.Lock()
	for _, x := range a {
		for _, y := range b {
			if x != y {
				n.cut[pair(x, y)] = true
			}
		}
	}
	n.mu.Unlock()
	n.enforce()
}

// Block stops the messages member from sends to member to, one way only,
// until Heal: from's pipeline and snapshot connections to to, and the
// stream connections to opened to from (on which from writes), are closed
// and refused; messages from to to from still flow.
func (n *PeerNet) Block(from, to string) {
	n.mu.Lock()
	n.oneway[[2]string{from, to}] = true
	n.mu.Unlock()
	n.enforce()
}

// Drop loses each chunk of bytes sent to or from member name with
// probability p, until Heal. A byte stream cannot skip a chunk and stay
// intact, so the proxy closes the connection at a dropped chunk, as a
// connection that loses too much ends; the members redial.
func (n *PeerNet) Drop(name string, p float64) {
	n.mu.Lock()
	n.drop[name] = p
	n.mu.Unlock()
}

// Snapshots is how many snapshot requests (POST /raft/snapshot) were sent
// to member name so far.
func (n *PeerNet) Snapshots(name string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.snaps[name]
}

// Isolate cuts member name from every other member (a blackhole of its peer
// traffic both ways), including connections to it whose sender is unknown.
func (n *PeerNet) Isolate(name string) {
	n.mu.Lock()
	n.isolated[name] = true
	n.mu.Unlock()
	n.enforce()
}

// Delay adds d ± jitter to every chunk of bytes sent to or from member
// name (on a link between two delayed members both delays add up). Order
// within a connection is kept.
func (n *PeerNet) Delay(name string, d, jitter time.Duration) {
	n.mu.Lock()
	n.delay[name], n.jitter[name] = d, jitter
	n.mu.Unlock()
}

// Heal removes every rule. Connections that were cut stay closed; the
// members redial.
func (n *PeerNet) Heal() {
	n.mu.Lock()
	clear(n.cut)
	clear(n.oneway)
	clear(n.drop)
	clear(n.isolated)
	clear(n.delay)
	clear(n.jitter)
	n.mu.Unlock()
}

// Stats returns the counters so far.
func (n *PeerNet) Stats() PeerNetStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

// Close stops every proxy, closes every connection and waits for all the
// goroutines the net started.
func (n *PeerNet) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	for _, p := range n.proxies {
		p.ln.Close()
	}
	conns := make([]*proxyConn, 0, len(n.conns))
	for c := range n.conns {
		conns = append(conns, c)
	}
	n.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	n.wg.Wait()
	return nil
}

func pair(a, b string) [2]string {
	if b < a {
		a, b = b, a
	}
	return [2]string{a, b}
}

// blockedLocked says whether a connection from member src ("" unknown) to
// member dst is forbidden; stream says it is a stream, whose messages flow
// from dst to src. n.mu is held.
func (n *PeerNet) blockedLocked(src, dst string, stream bool) bool {
	if n.isolated[dst] {
		return true
	}
	if src == "" {
		return false
	}
	from, to := src, dst
	if stream {
		from, to = dst, src
	}
	return n.isolated[src] || n.cut[pair(src, dst)] || n.oneway[[2]string{from, to}]
}

// connBlockedLocked is blockedLocked for an open connection.
func (n *PeerNet) connBlockedLocked(c *proxyConn) bool {
	c.mu.Lock()
	stream := c.stream
	c.mu.Unlock()
	return n.blockedLocked(n.srcNameLocked(c), c.dst, stream)
}

// srcNameLocked is the name of c's sender, "" while unknown.
func (n *PeerNet) srcNameLocked(c *proxyConn) string {
	c.mu.Lock()
	id := c.src
	c.mu.Unlock()
	if id == 0 {
		return ""
	}
	if name, ok := n.names[id]; ok {
		return name
	}
	return "id:" + strconv.FormatUint(id, 16)
}

// enforce closes every open connection the rules now forbid.
func (n *PeerNet) enforce() {
	n.mu.Lock()
	var victims []*proxyConn
	for c := range n.conns {
		if n.connBlockedLocked(c) {
			victims = append(victims, c)
		}
	}
	n.stats.Cut += len(victims)
	n.mu.Unlock()
	for _, c := range victims {
		c.close()
	}
}

// dropChunk says whether to drop a chunk on c (and counts it).
func (n *PeerNet) dropChunk(c *proxyConn) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	var p float64
	for _, m := range []string{n.srcNameLocked(c), c.dst} {
		if m != "" {
			p = max(p, n.drop[m])
		}
	}
	if p <= 0 || n.rnd.Float64() >= p {
		return false
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if !closed {
		n.stats.Dropped++
	}
	return true
}

// delayFor is the delay to add to a chunk on a connection from src to dst
// (either may be "").
func (n *PeerNet) delayFor(c *proxyConn) time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	var d time.Duration
	for _, m := range []string{n.srcNameLocked(c), c.dst} {
		if m == "" {
			continue
		}
		d += n.delay[m]
		if j := n.jitter[m]; j > 0 {
			d += time.Duration(n.rnd.Int64N(int64(2*j+1))) - j
		}
	}
	return max(d, 0)
}

func (p *PeerProxy) acceptLoop() {
	defer p.net.wg.Done()
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		c := &proxyConn{dst: p.Name, down: down, done: make(chan struct{})}
		n := p.net
		n.mu.Lock()
		n.stats.Accepted++
		if n.closed || n.blockedLocked("", p.Name, false) {
			if !n.closed {
				n.stats.Refused++
			}
			n.mu.Unlock()
			down.Close()
			continue
		}
		n.conns[c] = struct{}{}
		n.wg.Add(1)
		n.mu.Unlock()
		go p.serve(c)
	}
}

// serve forwards the remote member's requests on c to the member: request
// heads one at a time until a stream GET or a body of unknown length, then
// raw bytes.
func (p *PeerProxy) serve(c *proxyConn) {
	n := p.net
	defer n.wg.Done()
	defer func() {
		n.mu.Lock()
		delete(n.conns, c)
		n.mu.Unlock()
	}()
	br := bufio.NewReaderSize(c.down, 32<<10)
	var toMember *pump
	defer func() {
		if toMember != nil {
			toMember.closeSend()
		} else {
			c.close()
		}
	}()
	for {
		head, from, bodyLen, err := readRequestHead(br)
		if err != nil {
			return
		}
		path := requestPath(head)
		if from != 0 {
			c.mu.Lock()
			c.src = from
			c.stream = strings.HasPrefix(path, "/raft/stream/")
			c.mu.Unlock()
			n.mu.Lock()
			n.stats.Identified++
			blocked := n.connBlockedLocked(c)
			if blocked {
				n.stats.Refused++
			} else if path == "/raft/snapshot" {
				n.snaps[c.dst]++
			}
			n.mu.Unlock()
			if blocked {
				c.close()
				return
			}
		}
		if toMember == nil {
			up, err := net.DialTimeout("tcp", p.Target, 2*time.Second)
			if err != nil {
				n.mu.Lock()
				n.stats.DialFailed++
				n.mu.Unlock()
				c.close()
				return
			}
			if !c.setUp(up) {
				up.Close()
				return
			}
			// serve holds a count of n.wg, so these Adds never race
			// with Close's Wait.
			toMember = n.newPump(c, up)
			fromMember := n.newPump(c, c.down)
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				fromMember.copyFrom(up)
			}()
		}
		toMember.send(head)
		// A stream, or a body of unknown length (a snapshot's), ends the
		// parsing: the rest is spliced. Pipeline POSTs go on being read
		// one by one, so a snapshot sent on a kept-alive pipeline
		// connection is still seen (Snapshots).
		c.mu.Lock()
		stream := c.stream
		c.mu.Unlock()
		if stream || bodyLen < 0 {
			toMember.copyFrom(br)
			return
		}
		if bodyLen > 0 {
			if err := toMember.copyN(br, bodyLen); err != nil {
				return
			}
		}
	}
}

// setUp records the member-side connection unless c was closed meanwhile.
func (c *proxyConn) setUp(up net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.up = up
	return true
}

// close closes both sides once.
func (c *proxyConn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	close(c.done)
	c.down.Close()
	if c.up != nil {
		c.up.Close()
	}
}

// requestPath is the path of a request head's request line ("" if it has
// none).
func requestPath(head []byte) string {
	line, _, _ := bytes.Cut(bytes.TrimLeft(head, "\r\n"), []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 2 {
		return ""
	}
	p, _, _ := strings.Cut(f[1], "?")
	return p
}

// maxHead bounds a request head; peer requests have a few short headers.
const maxHead = 64 << 10

// readRequestHead reads one HTTP/1.1 request head (request line, headers,
// empty line) and returns its bytes as read, the X-Server-From member ID (0
// if absent or unparsable), and the body length: 0 or Content-Length, or -1
// when the body is chunked or its length is not given (the caller then
// stops parsing and splices).
func readRequestHead(br *bufio.Reader) (head []byte, from uint64, bodyLen int64, err error) {
	var buf bytes.Buffer
	first := true
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return nil, 0, 0, errors.New("request head line too long")
			}
			return nil, 0, 0, err
		}
		buf.Write(line)
		if buf.Len() > maxHead {
			return nil, 0, 0, errors.New("request head too long")
		}
		s := strings.TrimRight(string(line), "\r\n")
		if s == "" {
			if first {
				continue // stray CRLF between requests
			}
			break
		}
		if first {
			first = false
			continue // request line
		}
		k, v, ok := strings.Cut(s, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "x-server-from":
			if id, err := strconv.ParseUint(v, 16, 64); err == nil {
				from = id
			}
		case "content-length":
			l, err := strconv.ParseInt(v, 10, 64)
			if err != nil || l < 0 {
				bodyLen = -1
			} else if bodyLen >= 0 {
				bodyLen = l
			}
		case "transfer-encoding":
			if !strings.EqualFold(v, "identity") {
				bodyLen = -1
			}
		}
	}
	return buf.Bytes(), from, bodyLen, nil
}

// pump writes chunks to one side of a proxied connection, each after the
// delay the rules give it when it was read, in order. Its goroutine ends
// once closeSend was called and the queue is drained; it then closes the
// whole connection (a side that ended ends the exchange, as HTTP/1.1
// connections without half-closes do).
type pump struct {
	n  *PeerNet
	c  *proxyConn
	to net.Conn
	ch chan chunk

	closeOnce sync.Once
}

type chunk struct {
	due time.Time
	b   []byte
}

// newPump starts a pump writing to to. n.wg covers its goroutine; the
// caller holds a count of n.wg.
func (n *PeerNet) newPump(c *proxyConn, to net.Conn) *pump {
	p := &pump{n: n, c: c, to: to, ch: make(chan chunk, 64)}
	n.wg.Add(1)
	go p.run()
	return p
}

func (p *pump) run() {
	defer p.n.wg.Done()
	defer p.c.close()
	failed := false
	for ch := range p.ch {
		if failed {
			continue // drain so senders never block
		}
		if d := time.Until(ch.due); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-p.c.done:
				t.Stop()
				failed = true
				continue
			}
		}
		if _, err := p.to.Write(ch.b); err != nil {
			failed = true
			p.c.close()
		}
	}
}

// send queues a copy of b, or, when the rules drop it, closes the
// connection.
func (p *pump) send(b []byte) {
	if len(b) == 0 {
		return
	}
	if p.n.dropChunk(p.c) {
		p.c.close()
		return
	}
	p.ch <- chunk{due: time.Now().Add(p.n.delayFor(p.c)), b: bytes.Clone(b)}
}

// copyFrom sends everything r yields until it fails, then closes the pump.
func (p *pump) copyFrom(r io.Reader) {
	defer p.closeSend()
	buf := make([]byte, 32<<10)
	for {
		k, err := r.Read(buf)
		p.send(buf[:k])
		if err != nil {
			return
		}
	}
}

// copyN sends exactly k bytes from r.
func (p *pump) copyN(r io.Reader, k int64) error {
	buf := make([]byte, 32<<10)
	for k > 0 {
		m, err := r.Read(buf[:min(int64(len(buf)), k)])
		p.send(buf[:m])
		k -= int64(m)
		if err != nil {
			return err
		}
	}
	return nil
}

// closeSend ends the queue; the pump flushes it and closes the connection.
func (p *pump) closeSend() { p.closeOnce.Do(func() { close(p.ch) }) }
