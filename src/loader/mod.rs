//! The boot-loader seam of render: what a client runs after DHCP (the entry
//! program, each machine's boot program, the fallback for unknown machines)
//! comes from a [`Loader`]. iPXE is the one today; another loader (GRUB) is
//! another module here, chosen by [`for_site`], not a branch in every stage.

pub mod ipxe;

use crate::diag::{Diags, Sources};
use crate::resolve::BootPlan;
use crate::site::Site;
use crate::templates::Templates;

/// Output files as (path under the output root, text).
pub type Files = Vec<(String, String)>;

pub trait Loader: Sync {
    /// Each machine's boot program and the fallback, from the resolved
    /// data. Run right after resolve: their template errors are reported
    /// with resolve's, before anything else is rendered.
    fn programs(
        &self,
        templates: &Templates,
        sources: &Sources,
        boot: &BootPlan,
        diags: &mut Diags,
    ) -> Files;

    /// The entry program every client fetches first.
    fn entry(
        &self,
        templates: &Templates,
        sources: &Sources,
        boot: &BootPlan,
        diags: &mut Diags,
    ) -> Files;
}

/// The loader a site boots with.
pub fn for_site(_site: &Site) -> &'static dyn Loader {
    &ipxe::Ipxe
}
