//! The integration tests: they drive the real `bootc` binary on fixture sites.

#[macro_use]
mod harness;
mod allowed_hosts;
mod boot;
mod boot_smoke;
mod boot_support;
mod build;
mod dhcp;
mod dhcp_answers;
mod diff;
mod golden;
mod hashcache;
mod init;
mod injection;
mod inputs;
mod ipxe_features;
mod media;
mod media_rules;
mod printing;
mod pxe_chain;
mod schema;
mod secureboot;
mod serve;
mod sign;
mod templates;
mod uefi_chain;
mod validation;
mod vendor;
mod verify_hostile;
mod wording;
mod writer;
