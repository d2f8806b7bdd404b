//! Fitting a canonical write to one vendor: which of the request's fields the vendor can
//! express (the canonical fields its body template and path read), what it requires, and what
//! happens to the rest — refused under `strict` handling, dropped and reported under `lenient`
//! (except `test: true`, which is never dropped: the call would ring a real phone).
//! Pure: the planners call it before rendering the vendor's body.

use super::WriteOperation;
use crate::canonical::handling::{Handling, Warning};
use crate::canonical::write::{present_fields, remove_field};
use crate::canonical::{ErrorCode, FieldError, Problem};
use serde_json::Value;

impl WriteOperation {
    /// Whether the vendor can take the canonical field (a template reading all of `customer`
    /// takes each of its members).
    pub fn takes(&self, field: &str) -> bool {
        self.accepts.iter().any(|a| {
            a == field
                || field
                    .strip_prefix(a.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
        })
    }
}

/// Who a fit is for, for the messages.
#[derive(Clone, Copy)]
pub struct FitFor<'a> {
    pub provider: &'a str,
    pub vendor: &'a str,
    /// `place a call` or `update a call`.
    pub doing: &'a str,
}

/// `json` as the vendor can take it, and the fields dropped from it (lenient handling only).
pub fn fit(
    op: &WriteOperation,
    json: &Value,
    handling: Handling,
    who: FitFor<'_>,
) -> Result<(Value, Vec<Warning>), Problem> {
    let mut unfit: Vec<String> = present_fields(json)
        .into_iter()
        .filter(|f| !op.takes(f))
        .collect();
    // A vendor that takes no member of `customer` cannot take the customer at all: say so once.
    let takes_customer = op.accepts.iter().any(|a| a.starts_with("customer"));
    if !takes_customer && unfit.iter().any(|f| f.starts_with("customer.")) {
        unfit.retain(|f| !f.starts_with("customer."));
        unfit.push("customer".into());
    }
    if unfit.is_empty() {
        return Ok((json.clone(), Vec::new()));
    }
    let taken = if op.accepts.is_empty() {
        "nothing beyond the path".to_string()
    } else {
        op.accepts.join(", ")
    };
    let cannot = |field: &str| {
        format!(
            "provider {:?} (vendor {:?}) cannot take {field} to {} (it takes {taken})",
            who.provider, who.vendor, who.doing
        )
    };
    // A test call the vendor cannot mark as one would ring a real phone: never dropped.
    let rings = json.get("test") == Some(&Value::Bool(true)) && unfit.iter().any(|f| f == "test");
    let handling = if rings { Handling::Strict } else { handling };
    match handling {
        Handling::Strict => Err(Problem::invalid(
            unfit
                .iter()
                .map(|f| FieldError {
                    field: f.clone(),
                    message: if rings && f == "test" {
                        format!(
                            "{}; a test call is never placed as a real one, whatever the handling",
                            cannot(f)
                        )
                    } else {
                        format!(
                            "{}; send Prefer: handling=lenient to {} without it",
                            cannot(f),
                            who.doing
                        )
                    },
                })
                .collect(),
        )),
        Handling::Lenient => {
            let mut fitted = json.clone();
            let mut dropped = Vec::new();
            for f in unfit {
                remove_field(&mut fitted, &f);
                dropped.push(Warning {
                    message: format!("not sent: {}", cannot(&f)),
                    field: f,
                });
            }
            Ok((fitted, dropped))
        }
    }
}

/// Refuses a request that lacks a field the vendor requires (after defaults were filled in),
/// naming the field and the provider.
pub fn required(op: &WriteOperation, json: &Value, who: FitFor<'_>) -> Result<(), Problem> {
    for field in &op.require {
        let found = field
            .split('.')
            .try_fold(json, |v, seg| v.get(seg))
            .is_some_and(|v| !v.is_null());
        if !found {
            return Err(Problem::field(
                ErrorCode::InvalidRequest,
                field,
                format!(
                    "required by provider {:?} (vendor {:?}) to {}: give it in the request, or set it in the config's defaults (agents.NAME.providers.{}.defaults or providers.{}.defaults)",
                    who.provider, who.vendor, who.doing, who.provider, who.provider
                ),
            ));
        }
    }
    Ok(())
}
