//! The catalog of Event reasons, one per step, declared before use.
//!
//! | reason | type | when |
//! |---|---|---|
//! | `SecretGenerated` | Normal | a credentials Secret was created with a new password |
//! | `ObjectsApplied` | Normal | owned objects were created or changed |
//! | `CredentialsMissing` | Warning | a named Secret (or its `password` key) is missing; nothing was changed |
//! | `InvalidSpec` | Warning | the spec fails the CRD's rules (it bypassed admission) |
//! | `UsersEnsured` | Normal | the operator's accounts were (re)created on a node |
//! | `ReplicationWired` | Normal | a node was pointed at its peer and started |
//! | `NodeFenced` | Normal | a node was made read-only and its clients disconnected |
//! | `NodeUnfenced` | Normal | a node was made writable |
//! | `RoleLabelled` | Normal | a pod's `mysql-aa.io/role` label changed |
//! | `TransactionSkipped` | Warning | `SkipAndRecord` skipped a failing transaction |
//! | `ApplierHalted` | Warning | a node's applier stopped on an error and is left stopped (`Halt`) |
//! | `NodeRestarted` | Normal | rolling update: an outdated pod was deleted to come back on the new configuration |
//! | `NodeIsolated` | Normal | failover: the unreachable writer's pod was deleted so its kubelet stops the server |
//! | `WriterPromoted` | Normal | failover: a replica applied what it had received and was promoted |
//! | `WriterCaughtUp` | Normal | switchover: the target applied every transaction of the fenced writer |
//! | `SwitchoverSucceeded` | Normal | a `spec.switchover` request was carried out (or its target already was the writer) |
//! | `SwitchoverRefused` | Warning | a `spec.switchover` request's precondition did not hold; nothing changed |
//! | `SwitchoverFailed` | Warning | a switchover step failed; the old writer is kept |
//! | `ErrantTransactions` | Warning | a replica executed transactions the writer does not have; it will not be promoted |
//! | `DurabilityChanged` | Normal/Warning | semi-sync became active, or fell back to asynchronous (Warning) |
//! | `DivergenceChecked` | Normal | a divergence check found both nodes' tables identical |
//! | `DivergenceFound` | Warning | a divergence check found tables that differ; names them |
//! | `DivergenceNotCompared` | Warning | a divergence check found no quiet point (writes in progress) or could not read a node |
//! | `StepFailed` | Warning | a step failed; the reconcile retries with back-off |
//! | `ObjectRefused` | Warning | the API server refused a rendered object (names it, quotes its message); nothing running changes |

/// A secret was generated.
pub const SECRET_GENERATED: &str = "SecretGenerated";
/// Owned objects were applied.
pub const OBJECTS_APPLIED: &str = "ObjectsApplied";
/// A credentials Secret is missing.
pub const CREDENTIALS_MISSING: &str = "CredentialsMissing";
/// The spec is invalid.
pub const INVALID_SPEC: &str = "InvalidSpec";
/// An applier halted on an error.
pub const APPLIER_HALTED: &str = "ApplierHalted";
/// A step failed.
pub const STEP_FAILED: &str = "StepFailed";
/// The API server refused a rendered object.
pub const OBJECT_REFUSED: &str = "ObjectRefused";
/// A replica executed transactions the writer does not have.
pub const ERRANT_TRANSACTIONS: &str = "ErrantTransactions";
/// The effective durability of commits changed.
pub const DURABILITY_CHANGED: &str = "DurabilityChanged";
