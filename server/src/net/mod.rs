//! What faces the network: accepting connections (`listener.rs`) within the caps
//! (`admission.rs`), HTTP routing and the WebSocket upgrade (`http.rs`), the admin API
//! (`admin.rs`) and `/metrics` (`metrics.rs`).

pub(crate) mod admin;
pub(crate) mod admission;
pub(crate) mod http;
pub(crate) mod listener;
pub(crate) mod metrics;
