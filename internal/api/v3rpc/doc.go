// Package v3rpc serves etcd's v3 gRPC API (go.etcd.io/etcd/api/v3) on top of
// a member. It validates requests the way etcd's API layer does, fills
// response headers, and translates the server's errors to etcd's gRPC
// errors (rpctypes) — once, here, with errors.Is, so wrapped errors keep
// their meaning.
package v3rpc
