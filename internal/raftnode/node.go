package raftnode

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/failpoint"
)

// Persister makes the raft log durable.
//
// Threading: called only from the Ready-loop goroutine, one call at a time.
// Ownership: the slices belong to raft; implementations must not keep them
// after returning.
type Persister interface {
	// Save appends entries and the hard state to the WAL and makes them
	// durable before returning. Either argument may be empty.
	Save(st raftpb.HardState, ents []raftpb.Entry) error
	// SaveSnapshot makes an incoming snapshot durable (snap file and WAL
	// snapshot record) before the entries that follow it.
	SaveSnapshot(snap raftpb.Snapshot) error
}

// Transport delivers raft messages to peers. Send must not block on the
// network: a message that cannot be queued is dropped (raft retries).
type Transport interface {
	Send(msgs []raftpb.Message)
}

// Apply is one batch handed to the applier, in log order.
//
// Committed entries are durable on a quorum, but in raft's synchronous
// storage mode a node may learn that an entry is committed in the same Ready
// that appends it locally (a follower, or a new leader overwriting an
// uncommitted tail: the entries at those indexes are then new, whatever the
// WAL held there before). The applier must not make such an entry durable in
// its own storage before Persisted is closed; NeedsPersist says when to wait.
type Apply struct {
	Entries  []raftpb.Entry
	Snapshot raftpb.Snapshot
	// Persisted is closed once everything of the Ready that produced this
	// batch is durable.
	Persisted <-chan struct{}
	// firstUnsaved is the index of the first entry the Ready that produced
	// this batch appends, 0 when it appends none. Entries below it are in
	// raft's storage, which holds only what the WAL holds.
	firstUnsaved uint64
}

// NeedsPersist reports whether the batch holds an entry that its own Ready
// appends, i.e. one that is not yet durable locally (etcd's rule: wait for
// the WAL whenever a committed entry's index is at or above the first entry
// being persisted).
func (a Apply) NeedsPersist() bool {
	return len(a.Entries) > 0 && a.firstUnsaved != 0 && a.Entries[len(a.Entries)-1].Index >= a.firstUnsaved
}

// Config configures a Node.
type Config struct {
	Logger *zap.Logger
	// Raft is the raft state machine this package drives. Once Start is
	// called only the Node's loop goroutine touches it.
	Raft *raft.RawNode
	// Storage is the raft in-memory log the Raft node was created with.
	Storage *raft.MemoryStorage
	// Persister makes entries durable.
	Persister Persister
	// Transport sends messages to peers; nil for a single-member cluster
	// that has no peers yet.
	Transport Transport
	// TickInterval is --heartbeat-interval (one raft tick).
	TickInterval time.Duration
	// OnReadStates receives the read states of each Ready (may be nil).
	OnReadStates func([]raft.ReadState)
	// OnLeaderChange is called from the Ready loop when the leader changes;
	// lead is raft.None while there is no leader.
	OnLeaderChange func(lead, term uint64)
	// OnCommitted receives the commit index of each Ready's hard state.
	OnCommitted func(commit uint64)
	// OnDropped receives the tokens of proposals raft refused (for example
	// while leadership is being transferred); may be nil.
	OnDropped func(tokens []uint64, err error)
	// OnFatal is called once when persisting fails: the member cannot go on
	// safely and must stop.
	OnFatal func(error)
	// AsyncStorageWrites must be the raft.Config.AsyncStorageWrites the
	// Raft node was created with. When set, the log is made durable by a
	// goroutine of its own and the loop never waits for the disk (see
	// async.go); otherwise each Ready is persisted on the loop.
	AsyncStorageWrites bool
	// ElectionTicks is raft.Config.ElectionTick. With LeaderGone it lets a
	// follower campaign as soon as raft's lease allows (failover.go).
	ElectionTicks int
	// LeaderGone, when set, reports whether the leader's process is known
	// to be gone (its peer URL refuses connections). Set it only when raft
	// runs with PreVote. May be nil.
	LeaderGone func(lead uint64) bool
	// ApplyInline, when set, may apply batches on the loop goroutine
	// (inline.go); the applier must then call ApplyDone after each batch it
	// receives from the Apply channel.
	ApplyInline InlineApplier
}

// Node drives a raft.RawNode in one goroutine: ticks, proposals, requests
// and the Ready loop all run there, so a proposal reaches the log, the disk
// and the applier without a hand-off between raft's goroutine and ours.
// Create it with New, then Start it.
type Node struct {
	cfg    Config
	rn     *raft.RawNode
	props  *proposalQueue
	reqc   chan func() // run on the loop goroutine
	applyc chan Apply
	stopc  chan struct{}
	donec  chan struct{}
	// recvc carries messages from peers to the loop.
	recvc   chan raftpb.Message
	lead    atomic.Uint64
	term    atomic.Uint64
	isLead  atomic.Bool
	stopped sync.Once
	// lastTick is when the loop last ticked raft (unix nanos).
	lastTick atomic.Int64

	// Asynchronous storage writes only (async.go).
	id         uint64    // this node's raft ID
	appends    *msgQueue // loop → append goroutine: MsgStorageAppend
	local      *msgQueue // append goroutine → loop: responses to step
	stopAppend chan struct{}
	appendDone chan struct{}
	appendErr  chan error // capacity 1

	// handedOut counts batches sent on applyc that the applier has not yet
	// reported done (only with Config.ApplyInline).
	handedOut atomic.Int64

	// fwd gathers the entries of proposals forwarded by peers (forward.go)
	// until propose steps them; fwdBytes is their data size. Loop goroutine
	// only.
	fwd      []raftpb.Entry
	fwdBytes int
	// forwarded is set when a follower has forwarded a batch of proposals to
	// the leader and not heard from it since (forward.go). Loop goroutine
	// only.
	forwarded bool
	// quiet counts the ticks since the last message from the leader
	// (failover.go). Loop goroutine only.
	quiet int
	// lastAppended is the index of the last entry of the newest log append
	// handed to the append goroutine (asynchronous mode; forward.go). Loop
	// goroutine only.
	lastAppended uint64
}

// recvBuffer is how many peer messages may wait for the loop; a peer's
// Step blocks while it is full.
const recvBuffer = 4096

// New returns a Node that is not yet running. Config.Storage must hold only
// entries that are durable in the WAL.
func New(cfg Config) *Node {
	return &Node{
		cfg:    cfg,
		rn:     cfg.Raft,
		props:  newProposalQueue(),
		reqc:   make(chan func()),
		applyc: make(chan Apply, 64),
		recvc:  make(chan raftpb.Message, recvBuffer),
		stopc:  make(chan struct{}),
		donec:  make(chan struct{}),

		appends:    newMsgQueue(),
		local:      newMsgQueue(),
		stopAppend: make(chan struct{}),
		appendDone: make(chan struct{}),
		appendErr:  make(chan error, 1),
	}
}

// Apply returns the channel of batches to apply, in log order. It is closed
// when the loop stops.
func (n *Node) Apply() <-chan Apply { return n.applyc }

// Propose queues data for the log. It never blocks: proposals that arrive
// together go to raft as one message. token identifies the proposal to
// OnDropped. A proposal whose ctx is done by the time it would reach raft
// is discarded (its proposer has given up); while no leader is known,
// proposals wait in the queue.
func (n *Node) Propose(ctx context.Context, token uint64, data []byte) {
	n.props.add(proposal{ctx: ctx, token: token, data: data})
}

// ProposeAsLeader is Propose for a decision only the leader of term may
// make (a lease's expiry, a lease checkpoint). The loop steps it into raft
// only while this member leads in term, checked where raft's state cannot
// change under it; otherwise OnDropped learns ErrNotLeader. Raft would
// forward a follower's proposal to the leader, which commits it: a leader
// paused or cut off past its term would have a decision taken on its stale
// state carried out by its successor. Stepped in term, the entry commits
// only if a quorum appends it in term, before any later leader existed.
func (n *Node) ProposeAsLeader(ctx context.Context, token, term uint64, data []byte) {
	n.props.add(proposal{ctx: ctx, token: token, data: data, leaderOnly: true, term: term})
}

// ReadIndex asks raft for a read index; the answer comes through
// OnReadStates with rctx. Raft drops the request when there is no leader.
func (n *Node) ReadIndex(rctx []byte) error {
	return n.do(func() { n.rn.ReadIndex(rctx) })
}

// ApplyConfChange applies a committed conf change to raft and returns the
// new configuration, or nil once the node has stopped.
func (n *Node) ApplyConfChange(cc raftpb.ConfChange) *raftpb.ConfState {
	var cs *raftpb.ConfState
	if err := n.do(func() { cs = n.rn.ApplyConfChange(cc) }); err != nil {
		return nil
	}
	return cs
}

// Step hands a message from a peer to raft. It waits while the intake is
// full, until ctx is done (the message is then dropped; raft retries).
func (n *Node) Step(ctx context.Context, m raftpb.Message) error {
	select {
	case n.recvc <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.donec:
		return ErrStopped
	}
}

// ReportUnreachable tells raft that the last message to peer id could not
// be delivered, so the leader probes it again instead of streaming.
func (n *Node) ReportUnreachable(id uint64) {
	_ = n.do(func() { n.rn.ReportUnreachable(id) })
}

// ReportSnapshot tells raft whether the snapshot sent to peer id arrived.
func (n *Node) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	_ = n.do(func() { n.rn.ReportSnapshot(id, status) })
}

// TransferLeadership asks raft to hand leadership to transferee (a no-op
// unless this node leads).
func (n *Node) TransferLeadership(transferee uint64) error {
	return n.do(func() { n.rn.TransferLeader(transferee) })
}

// Campaign makes this node start an election.
func (n *Node) Campaign() error {
	var err error
	if derr := n.do(func() { err = n.rn.Campaign() }); derr != nil {
		return derr
	}
	return err
}

// do runs f on the loop goroutine and waits for it.
func (n *Node) do(f func()) error {
	done := make(chan struct{})
	select {
	case n.reqc <- func() { f(); close(done) }:
	case <-n.donec:
		return ErrStopped
	}
	<-done
	return nil
}

// Status is raft's full status (as etcd's /debug/vars shows it), taken on
// the loop goroutine; ErrStopped once the node has stopped.
func (n *Node) Status() (raft.Status, error) {
	var st raft.Status
	err := n.do(func() { st = n.rn.Status() })
	return st, err
}

// Storage is the in-memory raft log.
func (n *Node) Storage() *raft.MemoryStorage { return n.cfg.Storage }

// Leader is the current leader's ID, or raft.None.
func (n *Node) Leader() uint64 { return n.lead.Load() }

// Term is the current term as last seen in a Ready.
func (n *Node) Term() uint64 { return n.term.Load() }

// LastTick is when the loop last ticked raft (zero before the first tick):
// a recent tick says the loop is not stuck (etcd's isActive).
func (n *Node) LastTick() time.Time {
	if t := n.lastTick.Load(); t != 0 {
		return time.Unix(0, t)
	}
	return time.Time{}
}

// IsLeader reports whether this member is the leader.
func (n *Node) IsLeader() bool { return n.isLead.Load() }

// Start runs the loop in a goroutine.
func (n *Node) Start() { go n.run() }

// Stop stops the loop and waits for it.
func (n *Node) Stop() {
	n.stopped.Do(func() { close(n.stopc) })
	<-n.donec
}

// Done is closed once the loop has stopped.
func (n *Node) Done() <-chan struct{} { return n.donec }

// ErrStopped is returned by requests made after the node stopped.
var ErrStopped = errors.New("raftnode: stopped")

// ErrNotLeader is given to OnDropped for a ProposeAsLeader proposal whose
// term this member no longer leads in.
var ErrNotLeader = errors.New("raftnode: not the leader of the proposal's term")

func (n *Node) run() {
	defer close(n.donec)
	defer close(n.applyc)
	if n.cfg.AsyncStorageWrites {
		n.id = n.rn.BasicStatus().ID
		go n.appendLoop()
		// Runs before applyc closes: the append goroutine may send on it.
		defer func() {
			close(n.stopAppend)
			<-n.appendDone
		}()
	}
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	for {
		// Ready work comes first: in the first round a restarted node has
		// committed entries to replay; later rounds follow an event below.
		if err := n.ready(ticker.C); err != nil {
			if !errors.Is(err, ErrStopped) && n.cfg.OnFatal != nil {
				n.cfg.OnFatal(err)
			}
			return
		}
		select {
		case <-ticker.C:
			n.tick()
		case <-n.props.wake:
		case m := <-n.recvc:
			n.step(m)
		case f := <-n.reqc:
			f()
		case <-n.local.wake:
			n.stepLocalResponses()
		case err := <-n.appendErr:
			if n.cfg.OnFatal != nil {
				n.cfg.OnFatal(err)
			}
			return
		case <-n.stopc:
			return
		}
	}
}

// step steps m and every other message already waiting into raft, so a
// burst of peer messages yields one Ready. Proposals forwarded by peers are
// not stepped here but gathered (gatherForwarded) and stepped by propose
// together with this member's own.
func (n *Node) step(m raftpb.Message) {
	for {
		if !n.gatherForwarded(&m) {
			n.stepPeer(m)
		}
		select {
		case m = <-n.recvc:
		default:
			return
		}
	}
}

func (n *Node) stepPeer(m raftpb.Message) {
	n.heardFrom(&m)
	if err := n.rn.Step(m); err != nil {
		n.cfg.Logger.Debug("raft refused a peer message", zap.Stringer("type", m.Type), zap.Uint64("from", m.From), zap.Error(err))
	}
}

// ready hands queued proposals to raft and handles Readys until raft has
// nothing more. Proposals that arrived while a Ready was being persisted
// join the next one, so they share its write and fsync, and the commit of
// one batch travels in the same Ready as the entries of the next.
func (n *Node) ready(tick <-chan time.Time) error {
	for first := true; ; first = false {
		if !first {
			n.drainIntake(tick)
		}
		n.propose()
		if !n.rn.HasReady() {
			return nil
		}
		rd := n.rn.Ready()
		if n.cfg.AsyncStorageWrites {
			if err := n.handleAsync(rd); err != nil {
				return err
			}
			continue
		}
		if err := n.handle(rd); err != nil {
			return err
		}
		n.rn.Advance(rd)
	}
}

// propose steps the queued proposals, and the proposals peers forwarded
// since the last call, into raft as one MsgProp. Without a known leader the
// member's own stay queued (raft would drop them), as etcd's proposals wait
// for a leader until their deadline; forwarded ones are stepped (and dropped
// by raft) as they would have been one by one.
func (n *Node) propose() {
	st := n.rn.BasicStatus()
	if n.holdProposals(st) {
		return
	}
	var batch []proposal
	if st.Lead != raft.None {
		batch = n.props.take()
	}
	if len(batch) == 0 && len(n.fwd) == 0 {
		return
	}
	if batch != nil {
		defer n.props.recycle(batch)
	}
	ents := make([]raftpb.Entry, 0, len(batch)+len(n.fwd))
	var stale []uint64
	for i := range batch {
		p := &batch[i]
		if p.ctx != nil && p.ctx.Err() != nil {
			continue
		}
		if p.stale(st) {
			stale = append(stale, p.token)
			continue
		}
		ents = append(ents, raftpb.Entry{Data: p.data})
	}
	if len(stale) > 0 && n.cfg.OnDropped != nil {
		n.cfg.OnDropped(stale, ErrNotLeader)
	}
	own := len(ents) > 0
	ents = append(ents, n.fwd...)
	clear(n.fwd)
	n.fwd, n.fwdBytes = n.fwd[:0], 0
	if len(ents) == 0 {
		return
	}
	err := n.rn.Step(raftpb.Message{Type: raftpb.MsgProp, Entries: ents})
	if err == nil && st.RaftState == raft.StateFollower && n.cfg.AsyncStorageWrites {
		n.forwarded = true // raft sent them on to the leader
	}
	if err != nil && own && n.cfg.OnDropped != nil {
		tokens := make([]uint64, 0, len(batch))
		for i := range batch {
			if !batch[i].stale(st) {
				tokens = append(tokens, batch[i].token)
			}
		}
		n.cfg.OnDropped(tokens, err)
	}
}

// publish hands what a Ready says about the node's state to the callbacks:
// soft state first, then the hard state's term and commit, then read states.
func (n *Node) publish(rd raft.Ready) {
	if rd.SoftState != nil {
		// Role and leader are published before the callback runs, so it
		// sees a consistent state.
		lead := rd.SoftState.Lead
		n.isLead.Store(rd.SoftState.RaftState == raft.StateLeader)
		if old := n.lead.Swap(lead); old != lead {
			n.forwarded = false // forward.go: nothing to wait for from a new leader
			if n.cfg.OnLeaderChange != nil {
				n.cfg.OnLeaderChange(lead, rd.HardState.Term)
			}
		}
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		n.term.Store(rd.HardState.Term)
		if n.cfg.OnCommitted != nil {
			n.cfg.OnCommitted(rd.HardState.Commit)
		}
	}
	if len(rd.ReadStates) > 0 && n.cfg.OnReadStates != nil {
		n.cfg.OnReadStates(rd.ReadStates)
	}
}

func (n *Node) handle(rd raft.Ready) error {
	n.publish(rd)
	persisted := make(chan struct{})
	var inline *Apply
	if len(rd.CommittedEntries) > 0 || !raft.IsEmptySnap(rd.Snapshot) {
		ap := Apply{Entries: rd.CommittedEntries, Snapshot: rd.Snapshot, Persisted: persisted}
		if len(rd.Entries) > 0 {
			ap.firstUnsaved = rd.Entries[0].Index
		}
		if n.inlineEligible(len(rd.Entries), ap) {
			inline = &ap
		} else if err := n.handOut(ap); err != nil {
			return err
		}
	}
	leader := n.isLead.Load()
	if leader {
		n.send(rd.Messages)
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := n.cfg.Persister.SaveSnapshot(rd.Snapshot); err != nil {
			return fmt.Errorf("save snapshot: %w", err)
		}
	}
	if err := n.cfg.Persister.Save(rd.HardState, rd.Entries); err != nil {
		return fmt.Errorf("save wal: %w", err)
	}
	if len(rd.Entries) > 0 {
		failpoint.Crash(failpoint.WALAfterFsync) // test builds only
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := n.cfg.Storage.ApplySnapshot(rd.Snapshot); err != nil {
			return fmt.Errorf("apply snapshot to raft storage: %w", err)
		}
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := n.cfg.Storage.SetHardState(rd.HardState); err != nil {
			return fmt.Errorf("set hard state: %w", err)
		}
	}
	if err := n.cfg.Storage.Append(rd.Entries); err != nil {
		return fmt.Errorf("append to raft storage: %w", err)
	}
	if !leader {
		n.send(rd.Messages)
	}
	close(persisted)
	if inline != nil {
		applied, err := n.cfg.ApplyInline(*inline)
		if err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		if !applied {
			return n.handOut(*inline)
		}
	}
	return nil
}

// handOut sends a batch to the applier. While the applier is behind, it
// keeps serving requests: the applier may be waiting in ApplyConfChange for
// this very goroutine.
func (n *Node) handOut(ap Apply) error {
	if n.cfg.ApplyInline != nil {
		n.handedOut.Add(1)
	}
	for {
		select {
		case n.applyc <- ap:
			return nil
		case f := <-n.reqc:
			f()
		case <-n.stopc:
			return ErrStopped
		}
	}
}

func (n *Node) send(msgs []raftpb.Message) {
	if len(msgs) == 0 || n.cfg.Transport == nil {
		return
	}
	n.cfg.Transport.Send(msgs)
}
