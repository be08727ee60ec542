package mvcc

import "github.com/cairnkv/cairn/internal/backend"

// BackendTx is the backend transaction under this write transaction. The
// apply layer writes records outside the key space (members, cluster
// version) through it, so that they commit atomically with the consistent
// index the transaction records. Writer goroutine only, before End.
func (w *WriteTxn) BackendTx() *backend.WriteTx { return w.tx }

// KeyCount is the number of keys in the index, including keys whose latest
// revision is a deletion not yet compacted away (what etcd reports as
// etcd_debugging_mvcc_keys_total). Any goroutine.
func (s *Store) KeyCount() int { return s.idx.len() }
