//! Writes of the pair's status that hold only at a writer epoch: a JSON
//! patch whose first operation tests `status.writerEpoch`, so the API
//! server applies it atomically or refuses it. An operator whose view of
//! the epoch is old (it was partitioned, or a second instance without the
//! leader lease) cannot move the writer role: its claim is refused and it
//! decides again on what the API server holds.

use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use crate::api::MySQLActiveActive;

/// Applies `ops` to the status of the pair `name` if its
/// `status.writerEpoch` is `epoch`. The outer error: the operations do not
/// form a JSON patch; the inner one: the API server's answer (a refusal
/// when the epoch moved).
pub async fn patch_status_at_epoch(
    api: &Api<MySQLActiveActive>,
    name: &str,
    epoch: u64,
    mut ops: Vec<Value>,
) -> Result<Result<(), kube::Error>, serde_json::Error> {
    ops.insert(
        0,
        json!({"op": "test", "path": "/status/writerEpoch", "value": epoch}),
    );
    let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops))?;
    Ok(api
        .patch_status(name, &PatchParams::default(), &Patch::Json::<()>(patch))
        .await
        .map(drop))
}
