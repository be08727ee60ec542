package httpapi

import (
	"encoding/json"
	"expvar"
	"fmt"
	"net/http"
	"sort"
	"syscall"
)

// debugVars serves /debug/vars as etcd does: Go's expvar JSON (the process's
// published variables: "cmdline", "memstats") plus etcd's two,
// "file_descriptor_limit" (the soft RLIMIT_NOFILE) and "raft.status"
// (raft's status of the member, null once it has stopped), one key a line
// in key order. Only GET is allowed.
//
// etcd publishes its two in expvar's process-wide registry; here they are
// added per handler, so that the registry holds no reference to a member.
func debugVars(m Member) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		vars := map[string]string{
			"file_descriptor_limit": jsonString(fdLimit()),
			"raft.status":           jsonString(nil),
		}
		if st, ok := m.RaftStatus(); ok {
			vars["raft.status"] = jsonString(st)
		}
		expvar.Do(func(kv expvar.KeyValue) {
			if _, ours := vars[kv.Key]; !ours {
				vars[kv.Key] = kv.Value.String()
			}
		})
		keys := make([]string, 0, len(vars))
		for k := range vars {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		fmt.Fprint(w, "{\n")
		for i, k := range keys {
			if i > 0 {
				fmt.Fprint(w, ",\n")
			}
			fmt.Fprintf(w, "%q: %s", k, vars[k])
		}
		fmt.Fprint(w, "\n}\n")
	})
}

// fdLimit is the soft limit on open files, 0 if unknown (as etcd reports it).
func fdLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return rl.Cur
}

// jsonString is v as JSON; values that cannot be marshalled give null.
func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "null"
	}
	return string(b)
}
