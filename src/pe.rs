//! What bootc needs to know of a PE (EFI) file: its machine type and whether
//! it carries an Authenticode signature. Parsed with the `object` crate;
//! checking the signature itself is the firmware's and shim's job.

use object::LittleEndian as LE;
use object::pe;
use object::pe::ImageNtHeaders64;
use object::read::pe::ImageNtHeaders;

use crate::site::Arch;

/// A 64-bit PE image, as far as bootc looks at it.
#[derive(Debug, PartialEq, Eq)]
pub struct Pe {
    /// None for a machine type bootc does not boot.
    pub arch: Option<Arch>,
    /// The machine type.
    pub machine: pe::Machine,
    /// It has a security directory (an Authenticode signature table).
    pub signed: bool,
}

/// Reads `head`, the first bytes of a file of `size` bytes, as a 64-bit PE
/// file from its headers alone, or says why it is not one (also when its
/// sections or signature reach past `size`: the file was cut short).
pub fn inspect(head: &[u8], size: u64) -> Result<Pe, String> {
    if !head.starts_with(b"MZ") {
        return Err("it is not a PE/EFI file (no `MZ` header)".into());
    }
    let not_pe = |e: object::Error| format!("it is not a 64-bit PE/EFI file ({e})");
    let dos = pe::ImageDosHeader::parse(head).map_err(not_pe)?;
    let mut offset = dos.nt_headers_offset().into();
    let (nt, dirs) = ImageNtHeaders64::parse(head, &mut offset).map_err(not_pe)?;
    let machine = nt.file_header().machine.get(LE);
    let sections = nt.sections(head, offset).map_err(not_pe)?;
    let mut needed = sections
        .iter()
        .map(|s| u64::from(s.pointer_to_raw_data.get(LE)) + u64::from(s.size_of_raw_data.get(LE)))
        .max()
        .unwrap_or(0);
    // The security directory's address is a file offset.
    let security = dirs
        .get(pe::IMAGE_DIRECTORY_ENTRY_SECURITY)
        .filter(|d| d.virtual_address.get(LE) != 0 && d.size.get(LE) != 0);
    if let Some(d) = security {
        needed = needed.max(u64::from(d.virtual_address.get(LE)) + u64::from(d.size.get(LE)));
    }
    if size < needed {
        return Err(cut_short(needed, size));
    }
    let arch = match machine {
        pe::IMAGE_FILE_MACHINE_AMD64 => Some(Arch::X86_64),
        pe::IMAGE_FILE_MACHINE_ARM64 => Some(Arch::Arm64),
        _ => None,
    };
    Ok(Pe {
        arch,
        machine,
        signed: security.is_some(),
    })
}

/// Why a file whose headers say `needed` bytes, and has `size`, is wrong.
pub fn cut_short(needed: u64, size: u64) -> String {
    format!("it is cut short: its headers say {needed} bytes, the file has {size}")
}

/// The name of a PE machine type, for messages.
pub fn machine_name(machine: pe::Machine) -> String {
    match machine {
        pe::IMAGE_FILE_MACHINE_AMD64 => "x86_64".into(),
        pe::IMAGE_FILE_MACHINE_ARM64 => "arm64".into(),
        pe::IMAGE_FILE_MACHINE_I386 => "i386".into(),
        pe::IMAGE_FILE_MACHINE_ARMNT => "arm (32-bit)".into(),
        pe::IMAGE_FILE_MACHINE_RISCV64 => "riscv64".into(),
        m => format!("machine type {:#06x}", m.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_a_pe_file() {
        assert!(inspect(b"#!ipxe\n", 7).unwrap_err().contains("no `MZ`"));
        assert!(inspect(b"MZ", 2).is_err());
    }

    /// Debian's signed shim and arm64 GRUB (the synthetic PE files of every
    /// machine type are in tests/it/secureboot.rs).
    #[test]
    fn debian_signed_files() {
        for (path, arch) in [
            ("/usr/lib/shim/shimx64.efi.signed", Arch::X86_64),
            (
                "/usr/lib/debian-installer/images/12/arm64/text/debian-installer/arm64/grubaa64.efi",
                Arch::Arm64,
            ),
        ] {
            match std::fs::read(path) {
                Ok(bytes) => {
                    let p = inspect(&bytes, bytes.len() as u64).unwrap();
                    assert_eq!((p.arch, p.signed), (Some(arch), true), "{path}");
                }
                // Under CI the packages are installed (.ci/run): never skip.
                Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("{path}: {e}"),
                Err(_) => eprintln!("skipped: {path} is not installed"),
            }
        }
    }
}
