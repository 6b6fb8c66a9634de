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
//! | `StepFailed` | Warning | a step failed; the reconcile retries with back-off |

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
