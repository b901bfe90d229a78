//! `bootc diff`: what a change does to how machines boot.
//!
//! The interface is `plan.json`: both sides are a [`Plan`](crate::plan::Plan),
//! whether read from a built tree or taken from a site compiled in memory,
//! so the two compare the same way. The output tree's own files (per-MAC
//! scripts, boot.ipxe, fallback.ipxe, tftp/, dhcp/) are compared by hash too,
//! when both sides have them, to catch what the plan does not record (a
//! script template, a new chainloader).
//!
//! One change model, computed once ([`diff()`] gives a [`Report`]), and one
//! writer per output format: [`human`], [`markdown`], [`json`]. Machines with
//! the same changes are grouped, so a change to 10,000 machines reads as a
//! few lines; human and markdown output cap every list (through one
//! `view` of the report), JSON stays complete.

mod change;
mod compare;
pub mod git;
pub mod human;
pub mod json;
pub mod markdown;
mod report;
mod side;
mod text;
mod view;

pub use change::{Change, Lines};
pub use compare::diff;
pub use report::{
    Group, ImageChange, ImageDelta, MachineChange, MachineEntry, Report, SideInfo, SiteChange,
    Summary,
};
pub use side::{Hashes, Side, SideError, Texts, tracked};

/// Output formats of `bootc diff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum DiffFormat {
    #[default]
    Human,
    Markdown,
    Json,
}

impl Report {
    pub fn render(&self, format: DiffFormat) -> String {
        // A plan read from a built tree is not validated: whatever it holds
        // reaches a terminal or a pull-request comment escaped.
        match format {
            DiffFormat::Human => crate::escape::text(&human::write(self)).into_owned(),
            DiffFormat::Markdown => crate::escape::text(&markdown::write(self)).into_owned(),
            DiffFormat::Json => json::write(self),
        }
    }
}
