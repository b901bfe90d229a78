//! What an artifact is, from its bytes (SPEC section 10): the kernel format
//! and architecture, the initrd's compression, the boot records of an ISO.
//! Only the first [`HEAD`] bytes of a kernel or initrd are read, and for an
//! ISO its volume descriptors and boot catalog, so the checks cost a few
//! reads however large the file. PE headers are read by [`crate::pe`].

use std::io::{self, Read};

use crate::site::Arch;

/// How much of a kernel or initrd is read: every header bootc looks at
/// lies within it.
pub const HEAD: usize = 64 * 1024;

/// The arm64 Image magic, "ARM\x64" at offset 0x38.
const ARM64_MAGIC: &[u8] = b"ARM\x64";

/// A kernel bootc recognised: its architecture and format.
#[derive(Debug, PartialEq, Eq)]
pub struct Kernel {
    pub arch: Arch,
    pub format: &'static str,
}

/// Reads `head` (the first bytes of a file of `size` bytes) as a kernel, or
/// says what it is instead (also when it is cut short).
pub fn kernel(head: &[u8], size: u64) -> Result<Kernel, String> {
    if head.starts_with(b"MZ") {
        return pe_kernel(head, size);
    }
    if let Some(k) = bzimage(head, size)? {
        return Ok(k);
    }
    if head.get(0x38..0x3c) == Some(ARM64_MAGIC) {
        return Ok(Kernel {
            arch: Arch::Arm64,
            format: "an arm64 Image",
        });
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        let mut inner = [0u8; 0x40];
        let n = read_up_to(flate2::read::GzDecoder::new(head), &mut inner);
        if inner[..n].get(0x38..0x3c) == Some(ARM64_MAGIC) {
            return Ok(Kernel {
                arch: Arch::Arm64,
                format: "a gzip-compressed arm64 Image",
            });
        }
        return Err("it is a gzip file that does not hold an arm64 Image".into());
    }
    Err(format!("it is {}, not a kernel", what(head)))
}

/// An x86 bzImage (the Linux boot protocol header, "HdrS" at 0x202) that
/// is not a PE file; None when there is no such header.
fn bzimage(head: &[u8], size: u64) -> Result<Option<Kernel>, String> {
    if head.get(0x1fe..0x200) != Some(&[0x55, 0xaa]) || head.get(0x202..0x206) != Some(b"HdrS") {
        return Ok(None);
    }
    let setup_sects = match head[0x1f1] {
        0 => 4,
        n => u64::from(n),
    };
    let syssize = u64::from(u32::from_le_bytes(head[0x1f4..0x1f8].try_into().unwrap()));
    let needed = (setup_sects + 1) * 512 + syssize * 16;
    if size < needed {
        return Err(crate::pe::cut_short(needed, size));
    }
    Ok(Some(Kernel {
        arch: Arch::X86_64,
        format: "an x86 bzImage",
    }))
}

/// A PE/EFI kernel (an EFI-stub x86 bzImage or arm64 Image).
fn pe_kernel(head: &[u8], size: u64) -> Result<Kernel, String> {
    let pe = crate::pe::inspect(head, size)?;
    match pe.arch {
        Some(arch) => Ok(Kernel {
            arch,
            format: match arch {
                Arch::X86_64 => "an x86_64 PE/EFI kernel",
                Arch::Arm64 => "an arm64 PE/EFI kernel",
            },
        }),
        None => Err(format!(
            "it is a PE/EFI file for {}",
            crate::pe::machine_name(pe.machine)
        )),
    }
}

/// The format of an initrd (a compressed or plain cpio archive), or what
/// `head` is instead.
pub fn initrd(head: &[u8]) -> Result<&'static str, String> {
    const MAGIC: &[(&[u8], &str)] = &[
        (&[0x1f, 0x8b], "gzip"),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0], "xz"),
        (&[0x28, 0xb5, 0x2f, 0xfd], "zstd"),
        (&[0x02, 0x21, 0x4c, 0x18], "lz4"),
        (&[0x04, 0x22, 0x4d, 0x18], "lz4"),
        (b"BZh", "bzip2"),
        (&[0x5d, 0, 0], "lzma"),
        (&[0x89, b'L', b'Z', b'O'], "lzo"),
        (b"070701", "cpio"),
        (b"070702", "cpio"),
        (b"070707", "cpio"),
        (&[0xc7, 0x71], "cpio"),
        (&[0x71, 0xc7], "cpio"),
    ];
    MAGIC
        .iter()
        .find(|(m, _)| head.starts_with(m))
        .map(|(_, name)| *name)
        .ok_or_else(|| {
            format!(
                "it is {}, not a cpio archive or one compressed with gzip, xz, zstd, lz4, bzip2 or lzma",
                what(head)
            )
        })
}

/// What a disk or CD image offers its firmware.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Disc {
    /// An ISO 9660 file system (else a disk image with a partition table).
    pub iso9660: bool,
    /// Bootable by BIOS: an El Torito x86 entry, or an MBR boot signature.
    pub bios: bool,
    /// Bootable by UEFI: an El Torito EFI entry, or a GPT.
    pub efi: bool,
}

/// What the ISO or disk image read through `at` (offset, length) offers:
/// for ISO 9660 its El Torito boot entries, else its partition tables.
pub fn disc(mut at: impl FnMut(u64, usize) -> io::Result<Vec<u8>>) -> io::Result<Disc> {
    const SECTOR: u64 = 2048;
    let mut d = Disc::default();
    for n in 16..48 {
        let vd = at(n * SECTOR, SECTOR as usize)?;
        if vd.get(1..6) != Some(b"CD001") {
            break;
        }
        d.iso9660 = true;
        if vd[0] == 255 {
            break;
        }
        if vd[0] == 0 && vd.get(7..30) == Some(b"EL TORITO SPECIFICATION") {
            let lba = u32::from_le_bytes(vd[0x47..0x4b].try_into().unwrap());
            let catalog = at(u64::from(lba) * SECTOR, SECTOR as usize)?;
            el_torito(&catalog, &mut d);
        }
    }
    if !d.iso9660 {
        let mbr = at(0, 1024)?;
        d.bios = mbr.get(510..512) == Some(&[0x55, 0xaa]);
        d.efi = mbr.get(512..520) == Some(b"EFI PART");
    }
    Ok(d)
}

/// The platforms of the bootable entries of an El Torito boot catalog.
fn el_torito(catalog: &[u8], d: &mut Disc) {
    let entries: Vec<&[u8]> = catalog.chunks_exact(32).collect();
    // The validation entry: header id 1, key bytes 55 AA.
    let Some(validation) = entries.first() else {
        return;
    };
    if validation[0] != 1 || validation[30..32] != [0x55, 0xaa] {
        return;
    }
    let mut platform = validation[1];
    let mut mark = |platform: u8, entry: &[u8]| {
        if entry[0] == 0x88 {
            match platform {
                0 => d.bios = true,
                0xef => d.efi = true,
                _ => {}
            }
        }
    };
    if let Some(default) = entries.get(1) {
        mark(platform, default);
    }
    let mut i = 2;
    while let Some(header) = entries.get(i) {
        if header[0] != 0x90 && header[0] != 0x91 {
            break;
        }
        platform = header[1];
        let count = usize::from(u16::from_le_bytes([header[2], header[3]]));
        for entry in entries.iter().skip(i + 1).take(count) {
            mark(platform, entry);
        }
        i += 1 + count;
        if header[0] == 0x91 {
            break;
        }
    }
}

/// A few words on what unrecognised bytes look like, for messages.
fn what(head: &[u8]) -> String {
    if head.is_empty() {
        return "empty".into();
    }
    if head.starts_with(b"\x7fELF") {
        return "an ELF file (an uncompressed vmlinux?)".into();
    }
    if head.starts_with(b"#!ipxe") {
        return "an iPXE script".into();
    }
    let sample = &head[..head.len().min(512)];
    if sample
        .iter()
        .all(|&b| b == b'\n' || b == b'\r' || b == b'\t' || (0x20..0x7f).contains(&b))
    {
        return "text".into();
    }
    let hex: Vec<String> = head.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("unrecognised (it starts with {})", hex.join(" "))
}

fn read_up_to(mut r: impl Read, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n
}

#[cfg(test)]
mod tests;
