// Package v3concurrency serves etcd's lock (v3lockpb.Lock) and election
// (v3electionpb.Election) gRPC services.
//
// As in etcd, both are clients of the member itself: a lock is a
// concurrency.Mutex and an election a concurrency.Election of
// go.etcd.io/etcd/client/v3/concurrency, run on a clientv3.Client whose
// connection leads back to the member's own gRPC server (launch builds it
// over an in-memory listener). Every key they write is an ordinary key
// written through the KV API, so locks and elections are replicated,
// watched and expired like any other key, and the services hold no state
// of their own: any member serves any call, and a call may resume what a
// call on another member began (Proclaim, Resign, Unlock).
//
// The keys are the recipe's: a lock or campaign on name and lease L writes
// "<name>/<L in hex>", and the holder is the key of lowest create revision
// under "<name>/". A request's lease is used as given and never kept alive
// here (its owner keeps it alive); lease 0 makes the call grant a lease of
// 60 s that expires unless someone keeps it alive, as in etcd.
//
// Errors are etcd's: those of the client library (the member's own errors
// as the client reports them, e.g. "etcdserver: requested lease not
// found") and of the recipes ("election: no leader", "election: not
// leader"), which gRPC reports with code Unknown, as etcd's server does.
package v3concurrency
