//! The real-browser tests, in one binary of their own: each claim runs once per engine
//! (Chromium over CDP, Firefox ESR over WebDriver BiDi; the core ones in WebKitGTK's MiniBrowser
//! over WebDriver classic too), one browser at a time, and apart from
//! the other suites so their timings do not compete. Run one engine with
//! `cargo test --test browser chromium::`, one claim with its name.

#[path = "../util/mod.rs"]
mod util;

mod connection_caps;
mod contexts;
mod feeds;
mod http3;
mod lab_h3;
mod readme_table;
mod refusals;
mod remedies;
mod report;
mod token_expiry;
mod topics;
