//! Step `validate`: the same schema and rules as admission (a spec can
//! bypass admission: a CRD installed without its rules, an object restored
//! from a backup), and what the renderer relies on. Runs once per
//! reconcile; what passes is a [`Validated`] pair, the only thing the
//! later steps take.

use crate::api::MySQLActiveActive;

/// A pair whose spec passed validation.
#[derive(Clone, Copy, Debug)]
pub struct Validated<'a>(&'a MySQLActiveActive);

impl<'a> Validated<'a> {
    /// The pair.
    pub fn pair(&self) -> &'a MySQLActiveActive {
        self.0
    }
}

/// Step `validate`: `Err` says what is wrong, in admission's words.
pub fn validate(pair: &MySQLActiveActive) -> Result<Validated<'_>, String> {
    let value = serde_json::to_value(pair).map_err(|e| e.to_string())?;
    crate::admission::admit(&value, None).map_err(|e| e.to_string())?;
    crate::render::check_spec(pair).map_err(|e| e.to_string())?;
    Ok(Validated(pair))
}
