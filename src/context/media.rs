//! What the boot media's embedded programs see (media.ipxe.j2, media.grub.j2).

use serde::Serialize;

use super::{Describe, Field, Shape, SiteView};

view! {
    pub struct MediaContext<'a> {
        /// The site
        pub site: SiteView<'a>,
        /// Where the media enter the site
        pub entry: MediaEntry,
        /// The machine of a per-machine image (its static address); absent in the generic image
        #[serde(skip_serializing_if = "Option::is_none")]
        pub machine: Option<MediaMachine<'a>>,
    }
}

view! {
    pub struct MediaEntry {
        /// The iPXE script the BIOS side of the generic image chains: base-url + boot.ipxe
        pub ipxe: String,
        /// Where the per-MAC scripts are: base-url + machines/ (a machine's image chains its MAC's)
        pub machines: String,
        /// base-url as a GRUB device: (http,HOST[:PORT]); with Secure Boot its host's TFTP server, (tftp,HOST)
        pub grub_device: String,
        /// The site's GRUB entry on that device: base-url's path + grub/grub.cfg; with Secure Boot /grub/grub.cfg
        pub grub_config: String,
    }
}

view! {
    pub struct MediaMachine<'a> {
        /// The machine's name
        pub name: &'a str,
        /// Its MACs, lowercase with colons: the image configures the card with one of them
        pub macs: Vec<String>,
        /// Its fixed IPv4 address
        pub ip: String,
        /// Its subnet's prefix length
        pub prefix: u8,
        /// Its subnet's mask, dotted
        pub netmask: String,
        /// Its subnet, as network/prefix
        pub network: String,
        /// Its subnet's gateway
        pub gateway: String,
        /// Its subnet's DNS servers
        pub dns: Vec<String>,
    }
}
