//! What bootc needs to know of a PE (EFI) file: its machine type and whether
//! it carries an Authenticode signature. Parsed with the `object` crate;
//! checking the signature itself is the firmware's and shim's job.

use object::LittleEndian as LE;
use object::pe;
use object::read::pe::PeFile64;

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

/// Reads `bytes` as a 64-bit PE file, or says why it is not one.
pub fn inspect(bytes: &[u8]) -> Result<Pe, String> {
    if !bytes.starts_with(b"MZ") {
        return Err("it is not a PE/EFI file (no `MZ` header)".into());
    }
    let file =
        PeFile64::parse(bytes).map_err(|e| format!("it is not a 64-bit PE/EFI file ({e})"))?;
    let machine = file.nt_headers().file_header.machine.get(LE);
    let arch = match machine {
        pe::IMAGE_FILE_MACHINE_AMD64 => Some(Arch::X86_64),
        pe::IMAGE_FILE_MACHINE_ARM64 => Some(Arch::Arm64),
        _ => None,
    };
    let signed = file
        .data_directory(pe::IMAGE_DIRECTORY_ENTRY_SECURITY)
        .is_some_and(|d| d.virtual_address.get(LE) != 0 && d.size.get(LE) != 0);
    Ok(Pe {
        arch,
        machine,
        signed,
    })
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

    /// The smallest PE32+ header object accepts: DOS header pointing at
    /// the NT headers, the optional header with 16 data directories.
    fn pe(machine: pe::Machine, security: Option<(u32, u32)>) -> Vec<u8> {
        let mut b = vec![0u8; 0x200];
        b[0..2].copy_from_slice(b"MZ");
        b[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
        b[0x40..0x44].copy_from_slice(b"PE\0\0");
        b[0x44..0x46].copy_from_slice(&machine.0.to_le_bytes());
        // no sections; optional header size: 112 + 16 * 8
        b[0x54..0x56].copy_from_slice(&240u16.to_le_bytes());
        b[0x56..0x58].copy_from_slice(&0x22u16.to_le_bytes());
        let opt = 0x58;
        b[opt..opt + 2].copy_from_slice(&0x20bu16.to_le_bytes());
        b[opt + 32..opt + 36].copy_from_slice(&0x1000u32.to_le_bytes()); // section alignment
        b[opt + 36..opt + 40].copy_from_slice(&0x200u32.to_le_bytes()); // file alignment
        b[opt + 56..opt + 60].copy_from_slice(&0x1000u32.to_le_bytes()); // size of image
        b[opt + 60..opt + 64].copy_from_slice(&0x200u32.to_le_bytes()); // size of headers
        b[opt + 108..opt + 112].copy_from_slice(&16u32.to_le_bytes());
        if let Some((at, size)) = security {
            let d = opt + 112 + 8 * pe::IMAGE_DIRECTORY_ENTRY_SECURITY;
            b[d..d + 4].copy_from_slice(&at.to_le_bytes());
            b[d + 4..d + 8].copy_from_slice(&size.to_le_bytes());
        }
        b
    }

    #[test]
    fn machine_type_and_signature() {
        let x = inspect(&pe(pe::IMAGE_FILE_MACHINE_AMD64, Some((0x100, 0x80)))).unwrap();
        assert_eq!((x.arch, x.signed), (Some(Arch::X86_64), true));
        let a = inspect(&pe(pe::IMAGE_FILE_MACHINE_ARM64, None)).unwrap();
        assert_eq!((a.arch, a.signed), (Some(Arch::Arm64), false));
        let r = inspect(&pe(pe::IMAGE_FILE_MACHINE_RISCV64, Some((0, 0)))).unwrap();
        assert_eq!((r.arch, r.signed), (None, false));
        assert_eq!(machine_name(r.machine), "riscv64");
        assert!(inspect(b"#!ipxe\n").unwrap_err().contains("no `MZ`"));
        assert!(inspect(b"MZ").is_err());
    }

    /// Debian's signed kernel and shim, when this machine has them.
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
                    let p = inspect(&bytes).unwrap();
                    assert_eq!((p.arch, p.signed), (Some(arch), true), "{path}");
                }
                // Under CI the packages are installed (.ci/run): never skip.
                Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("{path}: {e}"),
                Err(_) => eprintln!("skipped: {path} is not installed"),
            }
        }
    }
}
