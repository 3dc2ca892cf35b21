//! What faces the network: accepting connections (`listener.rs`) within the caps
//! (`admission.rs`), HTTP responses bounded by a write deadline (`deadline.rs`), HTTP
//! routing and the WebSocket upgrade (`http.rs`), the admin API (`admin.rs`),
//! `/metrics` (`metrics.rs`), and what one address may do (`quota.rs`: lobby creation,
//! failed guesses).

pub(crate) mod admin;
pub(crate) mod admission;
pub(crate) mod deadline;
pub(crate) mod http;
pub(crate) mod listener;
pub(crate) mod metrics;
pub(crate) mod quota;
