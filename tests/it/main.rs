//! The integration tests: they drive the real `bootc` binary on fixture sites.

mod boot;
mod boot_smoke;
mod boot_support;
mod build;
mod diff;
mod harness;
mod schema;
mod validation;
