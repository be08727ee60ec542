package membership

import "testing"

// The vectors are the ones etcd itself produces (etcd-surface.md B.2).
func TestComputeIDs(t *testing.T) {
	tests := []struct {
		name    string
		token   string
		peers   [][]string
		members []uint64
		cluster uint64
	}{
		{
			name: "default", token: "etcd-cluster",
			peers:   [][]string{{"http://localhost:2380"}},
			members: []uint64{0x8e9e05c52164694d},
			cluster: 0xcdf818194e3a8c32,
		},
		{
			name: "three members", token: "etcd-cluster-1",
			peers:   [][]string{{"http://127.0.0.1:12380"}, {"http://127.0.0.1:22380"}, {"http://127.0.0.1:32380"}},
			members: []uint64{0x8211f1d0f64f3269, 0x91bc3c398fb3c146, 0xfd422379fda50e48},
			cluster: 0xef37ad9dc622a7c4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ids []uint64
			for i, p := range tt.peers {
				id := ComputeMemberID(p, tt.token, nil)
				if id != tt.members[i] {
					t.Fatalf("member %d: got %x, want %x", i, id, tt.members[i])
				}
				ids = append(ids, id)
			}
			// Order of the input must not matter.
			ids[0], ids[len(ids)-1] = ids[len(ids)-1], ids[0]
			if got := ComputeClusterID(ids); got != tt.cluster {
				t.Fatalf("cluster: got %x, want %x", got, tt.cluster)
			}
		})
	}
}

func TestFormatParseID(t *testing.T) {
	for _, id := range []uint64{1, 0xabc, 0x8e9e05c52164694d} {
		got, err := ParseID(FormatID(id))
		if err != nil || got != id {
			t.Fatalf("round trip %x: %x, %v", id, got, err)
		}
	}
	if FormatID(0x0abc) != "abc" {
		t.Fatal("IDs must not be zero padded")
	}
}
