use super::*;

/// A bzImage header: `setup_sects` 1 and `syssize` paragraphs.
fn bzimage(syssize: u32) -> Vec<u8> {
    let mut b = vec![0u8; 1024];
    b[0x1f1] = 1;
    b[0x1f4..0x1f8].copy_from_slice(&syssize.to_le_bytes());
    b[0x1fe..0x200].copy_from_slice(&[0x55, 0xaa]);
    b[0x202..0x206].copy_from_slice(b"HdrS");
    b
}

fn arm64_image() -> Vec<u8> {
    let mut b = vec![0u8; 0x40];
    b[0x38..0x3c].copy_from_slice(ARM64_MAGIC);
    b
}

#[test]
fn kernels_by_format() {
    let bz = bzimage(4);
    assert_eq!(
        kernel(&bz, 1024 + 64).unwrap(),
        Kernel {
            arch: Arch::X86_64,
            format: "an x86 bzImage"
        }
    );
    assert_eq!(
        kernel(&bz, 1024).unwrap_err(),
        "it is cut short: its headers say 1088 bytes, the file has 1024"
    );
    assert_eq!(kernel(&arm64_image(), 64).unwrap().arch, Arch::Arm64);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &arm64_image()).unwrap();
    let gz = gz.finish().unwrap();
    assert_eq!(
        kernel(&gz, gz.len() as u64).unwrap().format,
        "a gzip-compressed arm64 Image"
    );
    assert_eq!(
        kernel(b"not a kernel\n", 13).unwrap_err(),
        "it is text, not a kernel"
    );
    assert!(kernel(b"\x7fELF\x02", 5).unwrap_err().contains("ELF"));
    assert_eq!(kernel(b"", 0).unwrap_err(), "it is empty, not a kernel");
}

#[test]
fn initrds_by_magic() {
    assert_eq!(initrd(&[0x1f, 0x8b, 8, 0]), Ok("gzip"));
    assert_eq!(initrd(b"070701000000"), Ok("cpio"));
    assert_eq!(initrd(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Ok("zstd"));
    assert_eq!(initrd(b"\xfd7zXZ\0\0"), Ok("xz"));
    assert!(
        initrd(b"junk junk\n")
            .unwrap_err()
            .starts_with("it is text, not a cpio archive")
    );
    assert!(
        initrd(&[1, 2, 3, 4])
            .unwrap_err()
            .contains("starts with 01 02 03 04")
    );
}

/// An ISO 9660 image with an El Torito catalog of `platforms`
/// (0: BIOS, 0xef: EFI), all bootable; none: no boot record.
fn iso(platforms: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 21 * 2048];
    let pvd = 16 * 2048;
    b[pvd] = 1;
    b[pvd + 1..pvd + 6].copy_from_slice(b"CD001");
    let mut next = 17 * 2048;
    if !platforms.is_empty() {
        b[next + 1..next + 6].copy_from_slice(b"CD001");
        b[next + 7..next + 30].copy_from_slice(b"EL TORITO SPECIFICATION");
        b[next + 0x47..next + 0x4b].copy_from_slice(&20u32.to_le_bytes());
        next += 2048;
        let cat = 20 * 2048;
        b[cat] = 1;
        b[cat + 1] = platforms[0];
        b[cat + 30] = 0x55;
        b[cat + 31] = 0xaa;
        b[cat + 32] = 0x88;
        for (i, p) in platforms[1..].iter().enumerate() {
            let h = cat + 64 + i * 64;
            b[h] = if i + 2 == platforms.len() { 0x91 } else { 0x90 };
            b[h + 1] = *p;
            b[h + 2] = 1;
            b[h + 32] = 0x88;
        }
    }
    b[next] = 255;
    b[next + 1..next + 6].copy_from_slice(b"CD001");
    b
}

fn read(bytes: &[u8]) -> Disc {
    disc(|off, len| {
        let off = (off as usize).min(bytes.len());
        Ok(bytes[off..(off + len).min(bytes.len())].to_vec())
    })
    .unwrap()
}

#[test]
fn discs_by_boot_record() {
    let d = |iso9660, bios, efi| Disc { iso9660, bios, efi };
    assert_eq!(read(&iso(&[0])), d(true, true, false));
    assert_eq!(read(&iso(&[0, 0xef])), d(true, true, true));
    assert_eq!(read(&iso(&[0xef])), d(true, false, true));
    assert_eq!(read(&iso(&[])), d(true, false, false));
    let mut mbr = vec![0u8; 1024];
    mbr[510..512].copy_from_slice(&[0x55, 0xaa]);
    assert_eq!(read(&mbr), d(false, true, false));
    assert_eq!(read(b"iso\n"), d(false, false, false));
}

/// Debian's installer kernels and initrd (amd64, arm64) are what they say.
#[test]
fn debian_installer_files() {
    let di = "/usr/lib/debian-installer/images/12";
    for (path, arch) in [
        ("amd64/text/debian-installer/amd64/linux", Arch::X86_64),
        ("arm64/text/debian-installer/arm64/linux", Arch::Arm64),
    ] {
        let path = format!("{di}/{path}");
        match std::fs::read(&path) {
            Ok(b) => {
                assert_eq!(
                    kernel(&b[..HEAD], b.len() as u64).unwrap().arch,
                    arch,
                    "{path}"
                );
                let cut = (b.len() / 2) as u64;
                assert!(kernel(&b[..HEAD], cut).unwrap_err().contains("cut short"));
            }
            Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("{path}: {e}"),
            Err(_) => eprintln!("skipped: {path} is not installed"),
        }
    }
    if let Ok(b) = std::fs::read(format!("{di}/amd64/text/debian-installer/amd64/initrd.gz")) {
        assert_eq!(initrd(&b[..16]), Ok("gzip"));
    }
}
