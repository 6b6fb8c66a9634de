//go:build tools

// Package tools pins the etcd server the cluster-in-a-box runs.
// scripts/install-kubernetes builds it from this module; nothing imports it.
package tools

import _ "go.etcd.io/etcd/server/v3"
