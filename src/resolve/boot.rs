//! The boot of an image as scripts and plan.json see it: its artifacts'
//! URLs, its kernel command line, and what a machine fetches.

use crate::context::{BootView, Fetch};
use crate::plan::ImagePlan;
use crate::site::*;

impl ImagePlan {
    pub(crate) fn new(image: &Image) -> ImagePlan {
        let method = match &image.boot {
            Boot::Iso {
                method: IsoMethod::Sanboot,
                ..
            } => Some("sanboot"),
            Boot::Iso {
                method: IsoMethod::Memdisk(_),
                ..
            } => Some("memdisk"),
            _ => None,
        };
        ImagePlan {
            kind: image.boot.kind().to_string(),
            method: method.map(str::to_string),
            artifacts: image
                .boot
                .artifacts()
                .into_iter()
                .map(|a| a.record())
                .collect(),
            extra: Default::default(),
        }
    }
}

pub(super) fn boot_view(boot: &Boot, prefix: &str, args: &[String]) -> BootView {
    let f = |a: &Artifact| Fetch {
        url: a.url_from(prefix),
        name: a.file_name().to_string(),
    };
    let mut v = BootView {
        kind: boot.kind(),
        args: args.join(" "),
        arg_list: args.to_vec(),
        ..Default::default()
    };
    match boot {
        Boot::Kernel { kernel, initrds } => {
            v.kernel = Some(f(kernel));
            v.initrds = initrds.iter().map(f).collect();
        }
        Boot::Iso { iso, method } => {
            v.iso = Some(f(iso));
            match method {
                IsoMethod::Sanboot => v.method = Some("sanboot"),
                IsoMethod::Memdisk(m) => {
                    v.method = Some("memdisk");
                    v.memdisk = Some(f(m));
                }
            }
        }
        Boot::Chain(a) => v.chain = Some(f(a)),
        Boot::Local => {}
    }
    v
}

/// The longest kernel command line (SPEC section 10; Linux's
/// COMMAND_LINE_SIZE on x86 and arm64).
pub(super) const COMMAND_LINE_MAX: usize = 2048;

/// The length of the command line iPXE gives a kernel with `initrds` and
/// `args`: `initrd=NAME ` per initrd, then the arguments with spaces.
pub(super) fn command_line_len(initrds: &[Artifact], args: &[String]) -> usize {
    let names: usize = initrds
        .iter()
        .map(|i| "initrd= ".len() + i.file_name().len())
        .sum();
    let args: usize = args.iter().map(|a| a.len() + 1).sum();
    (names + args).saturating_sub(1)
}

/// What the boot loader fetches for `v`, in order.
pub(super) fn boot_fetches(v: &BootView) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    out.extend(v.kernel.iter().chain(&v.initrds).map(|x| x.url.clone()));
    out.extend(
        v.memdisk
            .iter()
            .chain(&v.iso)
            .chain(&v.chain)
            .map(|x| x.url.clone()),
    );
    out
}

/// What a boot-id covers of an image (its artifacts and form, and its
/// arch) as JSON, made once per image: part of [`boot_id`]'s object.
pub(super) struct ImageKey {
    arch: String,
    image: String,
}

impl ImageKey {
    pub(super) fn new(image: &Image) -> ImageKey {
        let plan = serde_json::to_value(ImagePlan::new(image)).expect("plain data");
        ImageKey {
            arch: json(&image.arch.to_string()),
            image: plan.to_string(),
        }
    }
}

fn json<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data")
}

/// The boot-id of a machine: a short hash of what it boots (its image's
/// artifacts and form, its kernel args, its files' hashes, its UEFI loader
/// and its script template), so it changes only when its boot does. It
/// hashes one JSON object, keys sorted, written out directly (the same
/// bytes as `serde_json::json!` of those values would print).
pub(super) fn boot_id(
    image: &ImageKey,
    args: &[String],
    files: &crate::plan::FileHashes,
    loader: &str,
    script: &str,
) -> String {
    let what = format!(
        "{{\"arch\":{},\"args\":{},\"files\":{},\"image\":{},\"loader\":{},\"script\":{}}}",
        image.arch,
        json(args),
        json(files),
        image.image,
        json(loader),
        json(script),
    );
    let h = blake3::hash(what.as_bytes()).to_hex();
    h[..12].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The boot-ids of machines already deployed must not change: the
    /// object hashed is the one `json!` made before it was written out.
    #[test]
    fn boot_id_hashes_the_same_bytes_as_the_json_value() {
        let remote = |name: &str| Artifact::Remote {
            url: format!("http://mirror.example/{name}"),
            file_name: name.to_string(),
            sha256: Some("12".repeat(32)),
            blake3: None,
        };
        let site = Image {
            name: "debian".into(),
            description: "Debian \"12\"".into(),
            boot: Boot::Kernel {
                kernel: remote("vmlinuz"),
                initrds: vec![remote("initrd.gz")],
            },
            arch: Arch::Arm64,
            kernel_args: Vec::new(),
            vars: Default::default(),
            file: 0,
        };
        let args = vec!["quiet".to_string(), "a=\"b\"".to_string()];
        // Given out of order: hashed by name, as the JSON object is.
        let files: crate::plan::FileHashes = [
            ("user-data".to_string(), "ab".repeat(32)),
            ("meta-data".to_string(), "cd".repeat(32)),
        ]
        .into_iter()
        .collect();
        let value = serde_json::json!({
            "image": ImagePlan::new(&site),
            "arch": site.arch.to_string(),
            "args": args,
            "files": files,
            "loader": "ipxe",
            "script": "machine.ipxe.j2",
        });
        let want = blake3::hash(value.to_string().as_bytes()).to_hex()[..12].to_string();
        let got = boot_id(
            &ImageKey::new(&site),
            &args,
            &files,
            "ipxe",
            "machine.ipxe.j2",
        );
        assert_eq!(got, want);
    }
}
