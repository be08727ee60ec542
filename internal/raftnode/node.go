package raftnode

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
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
// storage mode a follower may learn that an entry is committed in the same
// Ready that appends it locally. The applier must therefore not make an
// entry with index > LocalDurable() durable in its own storage before
// Persisted is closed (NeedsPersist says when to wait).
type Apply struct {
	Entries  []raftpb.Entry
	Snapshot raftpb.Snapshot
	// Persisted is closed once everything of the Ready that produced this
	// batch is durable.
	Persisted <-chan struct{}
	// durableBefore is the last index durable in the local WAL before this
	// batch's Ready was persisted.
	durableBefore uint64
}

// NeedsPersist reports whether some entry of the batch was not yet durable
// locally when the batch was handed over.
func (a Apply) NeedsPersist() bool {
	return len(a.Entries) > 0 && a.Entries[len(a.Entries)-1].Index > a.durableBefore
}

// Config configures a Node.
type Config struct {
	Logger *zap.Logger
	// Raft is the started (or restarted) raft node this package drives.
	Raft raft.Node
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
	// OnFatal is called once when persisting fails: the member cannot go on
	// safely and must stop.
	OnFatal func(error)
}

// Node drives a raft.Node. Create it with New, then Start it.
type Node struct {
	cfg    Config
	applyc chan Apply
	stopc  chan struct{}
	donec  chan struct{}
	lead   atomic.Uint64
	// durable is the last log index made durable by the Persister.
	durable atomic.Uint64
	term    atomic.Uint64
	isLead  atomic.Bool
	stopped sync.Once
}

// New returns a Node that is not yet running. lastIndex is the last index
// of the log already durable (from the WAL at restart, 0 when new).
func New(cfg Config, lastIndex uint64) *Node {
	n := &Node{
		cfg:    cfg,
		applyc: make(chan Apply, 64),
		stopc:  make(chan struct{}),
		donec:  make(chan struct{}),
	}
	n.durable.Store(lastIndex)
	return n
}

// Apply returns the channel of batches to apply, in log order. It is closed
// when the loop stops.
func (n *Node) Apply() <-chan Apply { return n.applyc }

// Raft returns the underlying raft node (for Propose, ReadIndex,
// ApplyConfChange, Status).
func (n *Node) Raft() raft.Node { return n.cfg.Raft }

// Storage is the in-memory raft log.
func (n *Node) Storage() *raft.MemoryStorage { return n.cfg.Storage }

// Leader is the current leader's ID, or raft.None.
func (n *Node) Leader() uint64 { return n.lead.Load() }

// Term is the current term as last seen in a Ready.
func (n *Node) Term() uint64 { return n.term.Load() }

// IsLeader reports whether this member is the leader.
func (n *Node) IsLeader() bool { return n.isLead.Load() }

// Start runs the tick and Ready loops in a goroutine.
func (n *Node) Start() { go n.run() }

// Stop stops the loops and the raft node and waits for them.
func (n *Node) Stop() {
	n.stopped.Do(func() { close(n.stopc) })
	<-n.donec
}

// Done is closed once the loop has stopped.
func (n *Node) Done() <-chan struct{} { return n.donec }

var errStopped = errors.New("raftnode: stopped")

func (n *Node) run() {
	defer close(n.donec)
	defer close(n.applyc)
	defer n.cfg.Raft.Stop()
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			n.cfg.Raft.Tick()
		case rd := <-n.cfg.Raft.Ready():
			if err := n.handle(rd); err != nil {
				if !errors.Is(err, errStopped) && n.cfg.OnFatal != nil {
					n.cfg.OnFatal(err)
				}
				return
			}
			n.cfg.Raft.Advance()
		case <-n.stopc:
			return
		}
	}
}

func (n *Node) handle(rd raft.Ready) error {
	if rd.SoftState != nil {
		lead := rd.SoftState.Lead
		if old := n.lead.Swap(lead); old != lead && n.cfg.OnLeaderChange != nil {
			n.cfg.OnLeaderChange(lead, rd.HardState.Term)
		}
		n.isLead.Store(rd.SoftState.RaftState == raft.StateLeader)
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

	persisted := make(chan struct{})
	if len(rd.CommittedEntries) > 0 || !raft.IsEmptySnap(rd.Snapshot) {
		select {
		case n.applyc <- Apply{Entries: rd.CommittedEntries, Snapshot: rd.Snapshot, Persisted: persisted, durableBefore: n.durable.Load()}:
		case <-n.stopc:
			return errStopped
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
		// Entries may be overwritten by a new leader: durable is the end of
		// the log as now persisted.
		n.durable.Store(rd.Entries[len(rd.Entries)-1].Index)
	} else if !raft.IsEmptySnap(rd.Snapshot) {
		n.durable.Store(rd.Snapshot.Metadata.Index)
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
	return nil
}

func (n *Node) send(msgs []raftpb.Message) {
	if len(msgs) == 0 || n.cfg.Transport == nil {
		return
	}
	n.cfg.Transport.Send(msgs)
}
