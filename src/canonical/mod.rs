//! The canonical call API: the one shape every internal service sees, whatever vendor is behind it.
//!
//! This module owns the public contract of `../shared/DESIGN.md`: the [`Call`] object, list pages,
//! RFC 9457 problems, call ids and cursors. It knows nothing of vendors, adapters or Pingora; the
//! rest of the gateway translates *into* these types.

pub mod call;
pub mod cursor;
pub mod events;
pub mod handling;
pub mod id;
pub mod list_query;
pub mod problem;
pub mod timestamp;
pub mod write;

pub use call::{Call, CallStatus, Channel, Direction, Message};
pub use problem::{ErrorCode, FieldError, Problem};

/// The operations callgate knows, with fixed names used in capabilities, metrics and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    ListCalls,
    GetCall,
    CreateCall,
    UpdateCall,
    ListProviders,
    ListAgents,
    /// `GET /v1/calls/{id}/events`: a live stream of one call's events.
    WatchCall,
}

impl Operation {
    pub const ALL: [Operation; 7] = [
        Operation::ListCalls,
        Operation::GetCall,
        Operation::CreateCall,
        Operation::UpdateCall,
        Operation::ListProviders,
        Operation::ListAgents,
        Operation::WatchCall,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operation::ListCalls => "list_calls",
            Operation::GetCall => "get_call",
            Operation::CreateCall => "create_call",
            Operation::UpdateCall => "update_call",
            Operation::ListProviders => "list_providers",
            Operation::ListAgents => "list_agents",
            Operation::WatchCall => "watch_call",
        }
    }

    /// An operation that reaches a vendor (the others callgate answers from its config).
    pub fn is_vendor_operation(self) -> bool {
        !matches!(self, Operation::ListProviders | Operation::ListAgents)
    }

    pub fn from_name(name: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|op| op.name() == name)
    }
}
