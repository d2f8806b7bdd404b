//! Commands of the `callgate` binary. `demo` and `sim` are the only callers of the simulators.

pub mod check;
pub mod demo;
pub mod explain;
pub mod serve;
pub mod sim;
