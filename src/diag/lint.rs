//! The kinds of warnings, each with a kebab-case name: shown with every
//! warning (`warning[unused-role]: …`) and silenced by name with `[site]
//! allow = ["unused-role"]`.

use std::fmt;

/// A kind of warning.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Lint {
    /// A role no machine, fallback or installer uses.
    UnusedRole,
    /// An image no role or machine boots.
    UnusedImage,
    /// A machine without `ip` on a site with `[dhcp]`.
    NoFixedIp,
    /// No iPXE chainloaders found: no tftp/ output.
    NoIpxeBinaries,
    /// An iPXE binary of the system folders that cannot be used.
    UnusableIpxeBinary,
    /// Kernel arguments given to an image that is not a kernel.
    UnusedKernelArgs,
    /// A role the fallback menu cannot offer (it needs a machine).
    MenuRoleLeftOut,
    /// Initrds too large for BIOS to load.
    BiosInitrdSize,
    /// A file of 4 GiB or more.
    LargeFile,
    /// A key of a `boot = false` machine that does nothing.
    UnusedReservationKey,
    /// An artifact root that is not a folder.
    MissingArtifactRoot,
    /// A machine with its own Secure Boot setting but no DHCP reservation.
    SecureBootWithoutIp,
    /// A file of the site that was skipped (not a regular file, …).
    SkippedFile,
}

impl Lint {
    /// Every kind, in the order they are listed to people.
    pub const ALL: [Lint; 13] = [
        Lint::UnusedRole,
        Lint::UnusedImage,
        Lint::NoFixedIp,
        Lint::NoIpxeBinaries,
        Lint::UnusableIpxeBinary,
        Lint::UnusedKernelArgs,
        Lint::MenuRoleLeftOut,
        Lint::BiosInitrdSize,
        Lint::LargeFile,
        Lint::UnusedReservationKey,
        Lint::MissingArtifactRoot,
        Lint::SecureBootWithoutIp,
        Lint::SkippedFile,
    ];

    /// Its name, as warnings show it and `[site] allow` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Lint::UnusedRole => "unused-role",
            Lint::UnusedImage => "unused-image",
            Lint::NoFixedIp => "no-fixed-ip",
            Lint::NoIpxeBinaries => "no-ipxe-binaries",
            Lint::UnusableIpxeBinary => "unusable-ipxe-binary",
            Lint::UnusedKernelArgs => "unused-kernel-args",
            Lint::MenuRoleLeftOut => "menu-role-left-out",
            Lint::BiosInitrdSize => "bios-initrd-size",
            Lint::LargeFile => "large-file",
            Lint::UnusedReservationKey => "unused-reservation-key",
            Lint::MissingArtifactRoot => "missing-artifact-root",
            Lint::SecureBootWithoutIp => "secure-boot-without-ip",
            Lint::SkippedFile => "skipped-file",
        }
    }

    /// What it warns about, in one sentence (the reference and the
    /// schema's hover text for `[site] allow` say the same).
    pub fn about(self) -> &'static str {
        match self {
            Lint::UnusedRole => "A role no machine, fallback or installer uses.",
            Lint::UnusedImage => "An image no role or machine boots.",
            Lint::NoFixedIp => "A machine without `ip` on a site with [dhcp].",
            Lint::NoIpxeBinaries => "No iPXE chainloaders found: no tftp/ output.",
            Lint::UnusableIpxeBinary => "An iPXE binary of the system folders that cannot be used.",
            Lint::UnusedKernelArgs => "Kernel arguments given to an image that is not a kernel.",
            Lint::MenuRoleLeftOut => {
                "A role the fallback menu cannot offer: its kernel args need a machine."
            }
            Lint::BiosInitrdSize => "Initrds too large for BIOS to load.",
            Lint::LargeFile => {
                "A file of 4 GiB or more, which many firmwares and loaders cannot load."
            }
            Lint::UnusedReservationKey => "A key of a `boot = false` machine that does nothing.",
            Lint::MissingArtifactRoot => "An artifact root that is not a folder.",
            Lint::SecureBootWithoutIp => {
                "A machine with its own Secure Boot setting but no ip: no DHCP reservation hands it its loader."
            }
            Lint::SkippedFile => {
                "A file of the site that was skipped: a symlinked folder, a dangling symlink, a FIFO."
            }
        }
    }

    /// The kind of this name.
    pub fn from_name(name: &str) -> Option<Lint> {
        Lint::ALL.into_iter().find(|l| l.name() == name)
    }
}

impl fmt::Display for Lint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kebab_case_unique_and_read_back() {
        let mut seen = std::collections::BTreeSet::new();
        for l in Lint::ALL {
            let n = l.name();
            assert!(
                n.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{n}"
            );
            assert!(seen.insert(n), "{n} twice");
            assert_eq!(Lint::from_name(n), Some(l));
        }
        assert_eq!(Lint::from_name("unused"), None);
    }
}
