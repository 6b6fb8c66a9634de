//go:build tools

// Package tools pins krew, the kubectl plugin manager the tests install
// `kubectl myaa` with (from its manifest and archive, as a user would).
// scripts/install-test-tools builds it from this module; nothing imports it.
package tools

import _ "sigs.k8s.io/krew/cmd/krew"
