package raftnode

import "time"

// Under a steady write load the loop may go from one Ready to the next
// without coming back to its select: every fsync lets new proposals queue,
// and ready keeps going while raft has work. Whatever waits only in the
// select would then wait for a lull in the writes: a linearizable read's
// ReadIndex, a follower's append acknowledgement (so the leader's commit
// index, and every write's answer, would lag), a tick. drainIntake hands
// all of that to raft between two Readys, without blocking.

// drainIntake steps the peer messages, runs the requests and takes the
// tick that are already waiting. Loop goroutine only, between Readys.
func (n *Node) drainIntake(tick <-chan time.Time) {
	for {
		select {
		case m := <-n.recvc:
			n.step(m)
		case f := <-n.reqc:
			f()
		case <-tick:
			n.tick()
		case <-n.local.wake: // asynchronous storage writes only
			n.stepLocalResponses()
		default:
			return
		}
	}
}

// tick advances raft's clock by one tick.
func (n *Node) tick() {
	n.forwarded = false // a follower's wait for its leader lasts a tick at most (forward.go)
	n.rn.Tick()
	n.lastTick.Store(time.Now().UnixNano())
	n.quiet++
	n.campaignIfLeaderGone()
}
