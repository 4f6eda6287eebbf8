//! The pub/sub core: numbered events per channel with replay rings and bounded subscriber
//! queues ([`fanout`]), the boundary that says who numbers and keeps them ([`bus`]: this
//! process, or [`redis`] for several nodes), and what the channels mean — sessions and topics
//! ([`hub`]), many topics read as one stream ([`multi`]), orders ([`orders`]), and ids that
//! ended on purpose ([`tombstones`]).
//!
//! It knows nothing of HTTP: it never imports the HTTP layer or axum, and its refusals are
//! its own error types ([`hub::HubError`], [`orders::OrderError`], [`fanout::SubscribeError`],
//! [`redis::Unavailable`]),
//! mapped to status codes in one place by the HTTP layer. It encodes events with [`crate::sse`].

pub mod bus;
pub mod fanout;
pub mod hub;
pub mod multi;
pub mod orders;
pub mod redis;
pub mod tombstones;
