{{/* Full name of the release's objects. */}}
{{- define "mysql-aa-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "mysql-aa-operator.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: mysql-aa-operator
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector of the operator pods. */}}
{{- define "mysql-aa-operator.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The ServiceAccount's name. */}}
{{- define "mysql-aa-operator.serviceAccount" -}}
{{- default (include "mysql-aa-operator.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/*
The rules the operator needs on the pairs' objects, in a ClusterRole
(cluster-wide) or in a Role per watched namespace (namespaced mode). Every
rule says why it is there; a test runs the operator against these rules and
fails on a permission it never used, unless the rule says why it is kept.
*/}}
{{- define "mysql-aa-operator.pairRules" -}}
# why: the operator's own resource: the controller lists and watches every
# pair (its reflector answers every read).
- apiGroups: ["mysql-aa.io"]
  resources: ["mysqlactiveactives"]
  verbs: ["list", "watch"]
# why: status is the operator's report (conditions, writer, nodes, failover,
# switchover and divergence outcomes), written by the pair loop. The spec is
# never written.
- apiGroups: ["mysql-aa.io"]
  resources: ["mysqlactiveactives/status"]
  verbs: ["patch"]
# why: the owned ConfigMap (my.cnf) and Services: list/watch feed the
# reflector that apply reads (and a change to them triggers a reconcile that
# repairs it); server-side apply (patch, and create: the API server checks it
# when an apply creates the object).
- apiGroups: [""]
  resources: ["configmaps", "services"]
  verbs: ["list", "watch", "create", "patch"]
# why: the owned StatefulSet of the two servers, as above.
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["list", "watch", "create", "patch"]
# why: the owned PodDisruptionBudget, as above.
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["list", "watch", "create", "patch"]
# why: the writer Service's EndpointSlice (SingleWriter), written by the
# pair loop with the writer label (a failover moves writes in one write),
# watched to repair it and to write nothing in a steady state.
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["list", "watch", "create", "patch"]
# why: a pair's NetworkPolicy (spec.networkPolicy), as above, and deleted
# when the spec no longer asks for one.
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# why: before generating a password, look for a data volume left by an
# earlier pair of the same name (its servers hold the old password): get by
# name only.
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["get"]
# why: account passwords: read them (get) and create the generated Secrets
# once. No list or watch: the operator never reads Secrets it was not named.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create"]
# kept: refills the `password` key of a generated Secret that lost it
# before any data volume existed (after that, the loss is reported instead),
# and sets a generated Secret's ownerReference to follow pvcRetentionPolicy;
# only happens after a hand edit, a policy change or an upgrade.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["patch"]
# why: observe the servers' pods (IP, readiness) and move the writer label
# (mysql-aa.io/role), which routes the writer Service.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch", "patch"]
# why: failover: a writer the operator cannot reach to fence has its pod
# deleted (kubelet-confirmed, never forced) so its server stops before the
# replica is promoted; rolling updates (the StatefulSet is OnDelete): an
# outdated pod is deleted, replica first, to come back on the new my.cnf.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["delete"]
# why: the pairs' writer Leases: list/watch feed the reflector whose
# changes move the operator's lease clock (failover waits for expiry by its
# own clock); server-side apply creates them (create, patch); HandLease
# names the writer in them (patch).
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["list", "watch", "create", "patch"]
# kept: the agents' Role grants get and update on their pair's Lease, and
# the API server lets the operator create that Role only if it holds both
# itself (RBAC escalation prevention); the operator never uses them.
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "update"]
# why: the agents' ServiceAccount, Role and RoleBinding (one each per
# SingleWriter pair): owned objects, applied and repaired as above.
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["list", "watch", "create", "patch"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["list", "watch", "create", "patch"]
# why: an Event for every step (fenced, promoted, switched over, ...);
# a repeated Event is folded into a series by patching the first one.
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}
