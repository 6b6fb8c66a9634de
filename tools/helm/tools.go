//go:build tools

// Package tools pins the Helm CLI the tests and `sandbox up` run.
// scripts/install-kubernetes builds it from this module; nothing imports it.
package tools

import _ "helm.sh/helm/v4/cmd/helm"
