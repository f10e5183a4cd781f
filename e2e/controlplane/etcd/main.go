// etcd for the local control plane: the etcd server's own entry point (go.etcd.io/etcd/server/v3
// at the version k8s.io/kubernetes selects), as etcd's release binary calls it.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
