package server

import (
	"sync/atomic"
	"time"
)

// reqIDGen hands out raft request IDs unique across the cluster, with etcd's
// layout so that IDs from cairn and etcd members never collide in a mixed
// cluster: the top 16 bits are the low 16 bits of the member ID, the low 48
// bits start at (start-up milliseconds << 8) and count up by one.
type reqIDGen struct {
	prefix uint64
	suffix atomic.Uint64
}

const (
	suffixBits = 48
	cntBits    = 8
	suffixMask = 1<<suffixBits - 1
)

func newReqIDGen(memberID uint64, now time.Time) *reqIDGen {
	g := &reqIDGen{prefix: memberID << suffixBits}
	ms := uint64(now.UnixNano()/int64(time.Millisecond)) & (1<<(suffixBits-cntBits) - 1)
	g.suffix.Store(ms << cntBits)
	return g
}

// Next returns a fresh ID. Safe for concurrent use.
func (g *reqIDGen) Next() uint64 {
	return g.prefix | (g.suffix.Add(1) & suffixMask)
}
