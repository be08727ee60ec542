// Package deps pins the project's chosen dependencies in go.mod while the packages
// that use them are being written. Removed once every one is imported for real.
package deps

import (
	_ "github.com/google/btree"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/soheilhy/cmux"
	_ "github.com/spf13/cobra"
	_ "github.com/spf13/pflag"
	_ "go.etcd.io/bbolt"
	_ "go.etcd.io/etcd/api/v3/etcdserverpb"
	_ "go.etcd.io/etcd/client/v3"
	_ "go.etcd.io/raft/v3"
	_ "google.golang.org/grpc"
	_ "sigs.k8s.io/yaml"
	_ "go.uber.org/zap"
)
