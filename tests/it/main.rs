//! The integration tests: they drive the real `bootc` binary on fixture sites.

#[macro_use]
mod harness;
mod allowed_hosts;
mod artifact_bytes;
mod boot;
mod boot_smoke;
mod boot_support;
mod boottest;
mod build;
mod dhcp;
mod dhcp_answers;
mod dhcp_include;
mod diff;
mod golden;
mod hashcache;
mod identity;
mod import;
mod incremental;
mod init;
mod injection;
mod inputs;
mod ipxe_features;
mod media;
mod media_rules;
mod packaging;

mod preview;
mod printing;
mod pxe_chain;
mod quickstart;
mod reference;
mod report;
mod schema;
mod secureboot;
mod serve;
mod sign;
mod status;
mod switches;
mod templates;
mod uefi_chain;
mod validation;
mod vendor;
mod verify_hostile;
mod wording;
mod writer;
