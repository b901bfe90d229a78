//! One test per validation rule: a broken copy of the `basic` fixture must
//! fail with the exact message at the exact file:line:col, exit 1, and leave
//! nothing written. The full diagnostic text is an insta snapshot.

use crate::harness::Site;

// --- TOML: syntax, unknown and missing keys, types -------------------------

invalid!(toml_syntax, "TOML syntax error", "bootc.toml:2:16", |s| {
    s.edit("bootc.toml", "name = \"fixture\"", "name = \"fixture");
});

invalid!(
    not_utf8,
    "machines/rack1.toml is not UTF-8 text",
    "machines/rack1.toml:11:13",
    |s| {
        let mut bytes = std::fs::read(s.path("machines/rack1.toml")).unwrap();
        let at = s.read("machines/rack1.toml").find("node02").unwrap() + 4;
        bytes[at] = 0xff;
        std::fs::write(s.path("machines/rack1.toml"), bytes).unwrap();
    }
);

// Nesting past the parser's limit is an error at its place, not a crash.
invalid!(
    toml_too_deep,
    "TOML syntax error: cannot recurse further; max recursion depth met",
    "machines/rack1.toml:15:",
    |s| {
        let deep = format!("{}1{}", "[".repeat(400), "]".repeat(400));
        s.edit(
            "machines/rack1.toml",
            "vars = { tier = \"silver\" }",
            &format!("vars = {{ tier = \"silver\", deep = {deep} }}"),
        );
    }
);

invalid!(
    template_includes_itself,
    "template error in templates/cloud-init.yaml.j2",
    "templates/cloud-init.yaml.j2:1:",
    |s| {
        s.write(
            "templates/cloud-init.yaml.j2",
            "{% include \"cloud-init.yaml.j2\" %}\n",
        );
    }
);

// A template that would run for hours (a hostile pull request stalling CI)
// stops at its fuel limit, at its place.
invalid!(
    template_runs_out_of_fuel,
    "template error in templates/cloud-init.yaml.j2: engine ran out of fuel",
    "templates/cloud-init.yaml.j2:1:1",
    |s| {
        s.write(
            "templates/cloud-init.yaml.j2",
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n",
        );
    }
);

invalid!(
    unknown_key_with_hint,
    "unknown key `nme`",
    "machines/rack1.toml:11:1",
    |s| {
        s.edit(
            "machines/rack1.toml",
            "name = \"node02\"",
            "nme = \"node02\"",
        );
    }
);

invalid!(
    unknown_key_in_site,
    "unknown key `fallbak`",
    "bootc.toml:4:1",
    |s| {
        s.edit("bootc.toml", "fallback = ", "fallbak = ");
    }
);

invalid!(
    missing_key,
    "missing key `next-server`",
    "bootc.toml:7:1",
    |s| {
        s.edit("bootc.toml", "next-server = \"10.77.0.1\"\n", "");
    }
);

invalid!(wrong_type, "wrong type", "machines/rack1.toml:8:6", |s| {
    s.edit("machines/rack1.toml", "ip = \"10.77.0.11\"", "ip = 11");
});

// --- MACs ----------------------------------------------------------------

invalid!(
    mac_syntax,
    "invalid MAC address `52:54:00:aa:bb`",
    "machines/rack1.toml:7:7",
    |s| {
        s.edit(
            "machines/rack1.toml",
            "\"52:54:00:aa:bb:01\"",
            "\"52:54:00:aa:bb\"",
        );
    }
);

invalid!(
    mac_group,
    "MAC address `53:54:00:aa:bb:01` is a group (multicast) address",
    "machines/rack1.toml:7:7",
    |s| {
        s.edit(
            "machines/rack1.toml",
            "\"52:54:00:aa:bb:01\"",
            "\"53:54:00:aa:bb:01\"",
        );
    }
);

invalid!(
    mac_all_zero,
    "MAC address `00:00:00:00:00:00` is all zeros",
    "machines/rack1.toml:7:7",
    |s| {
        s.edit(
            "machines/rack1.toml",
            "\"52:54:00:aa:bb:01\"",
            "\"00:00:00:00:00:00\"",
        );
    }
);

invalid!(
    mac_broadcast,
    "MAC address `FF-FF-FF-FF-FF-FF` is the broadcast address",
    "machines/rack1.toml:7:7",
    |s| {
        s.edit(
            "machines/rack1.toml",
            "\"52:54:00:aa:bb:01\"",
            "\"FF-FF-FF-FF-FF-FF\"",
        );
    }
);

invalid!(
    mac_twice,
    "MAC address 52:54:00:aa:bb:01 is used twice",
    "machines/sub/rack2.toml:3:7",
    |s| {
        s.edit(
            "machines/sub/rack2.toml",
            "52:54:00:aa:bb:03",
            "5254.00AA.BB01",
        );
    }
);

invalid!(
    mac_missing,
    "machine `node03` has no MAC address",
    "machines/sub/rack2.toml:1:1",
    |s| {
        s.edit(
            "machines/sub/rack2.toml",
            "mac = \"52:54:00:aa:bb:03\"\n",
            "",
        );
    }
);

// --- Machine names -----------------------------------------------------------

invalid!(
    name_not_rfc1123,
    "machine name `node_03` is not a valid host name",
    "machines/sub/rack2.toml:2:8",
    |s| {
        s.edit("machines/sub/rack2.toml", "\"node03\"", "\"node_03\"");
    }
);

invalid!(
    name_twice,
    "machine name `node01` is used twice",
    "machines/sub/rack2.toml:2:8",
    |s| {
        s.edit("machines/sub/rack2.toml", "\"node03\"", "\"node01\"");
    }
);

// --- IP addresses and subnets ------------------------------------------------

invalid!(
    ip_syntax,
    "invalid IP address `10.77.0.300`",
    "machines/sub/rack2.toml:4:6",
    |s| {
        s.edit("machines/sub/rack2.toml", "10.77.0.13", "10.77.0.300");
    }
);

invalid!(
    ip_outside_subnets,
    "IP address 10.78.0.13 is not inside any subnet",
    "machines/sub/rack2.toml:4:6",
    |s| {
        s.edit("machines/sub/rack2.toml", "10.77.0.13", "10.78.0.13");
    }
);

invalid!(
    ip_network_address,
    "IP address 10.77.0.0 is the network address of 10.77.0.0/24",
    "machines/sub/rack2.toml:4:6",
    |s| {
        s.edit("machines/sub/rack2.toml", "10.77.0.13", "10.77.0.0");
    }
);

invalid!(
    ip_broadcast_address,
    "IP address 10.77.0.255 is the broadcast address of 10.77.0.0/24",
    "machines/sub/rack2.toml:4:6",
    |s| {
        s.edit("machines/sub/rack2.toml", "10.77.0.13", "10.77.0.255");
    }
);

invalid!(
    ip_in_pool,
    "IP address 10.77.0.150 is inside the dynamic pool 10.77.0.100-10.77.0.200",
    "machines/sub/rack2.toml:4:6",
    |s| {
        s.edit("machines/sub/rack2.toml", "10.77.0.13", "10.77.0.150");
    }
);

invalid!(
    ip_twice,
    "IP address 10.77.0.11 is used twice",
    "machines/sub/rack2.toml:4:6",
    |s| {
        s.edit("machines/sub/rack2.toml", "10.77.0.13", "10.77.0.11");
    }
);

invalid!(
    pool_outside_subnet,
    "pool end 10.77.1.200 is not inside subnet 10.77.0.0/24",
    "bootc.toml:12:24",
    |s| {
        s.edit("bootc.toml", "\"10.77.0.200\"", "\"10.77.1.200\"");
    }
);

invalid!(
    pool_reversed,
    "pool starts at 10.77.0.200, after its end 10.77.0.100",
    "bootc.toml:12:8",
    |s| {
        s.edit(
            "bootc.toml",
            "[\"10.77.0.100\", \"10.77.0.200\"]",
            "[\"10.77.0.200\", \"10.77.0.100\"]",
        );
    }
);

invalid!(
    subnets_overlap,
    "subnets 10.77.0.0/24 and 10.77.0.128/25 overlap",
    "bootc.toml:20:1",
    |s| {
        s.append(
            "bootc.toml",
            "\n[[dhcp.subnet]]\ncidr = \"10.77.0.128/25\"\n",
        );
    }
);

invalid!(
    subnet_host_bits,
    "subnet `10.77.0.5/24` has host bits set",
    "bootc.toml:11:8",
    |s| {
        s.edit("bootc.toml", "\"10.77.0.0/24\"", "\"10.77.0.5/24\"");
    }
);

invalid!(
    gateway_outside_subnet,
    "gateway 10.78.0.1 is not inside subnet 10.77.0.0/24",
    "bootc.toml:13:11",
    |s| {
        s.edit(
            "bootc.toml",
            "gateway = \"10.77.0.1\"",
            "gateway = \"10.78.0.1\"",
        );
    }
);

invalid!(
    next_server_invalid,
    "invalid next-server `tftp.lab`",
    "bootc.toml:8:15",
    |s| {
        s.edit(
            "bootc.toml",
            "next-server = \"10.77.0.1\"",
            "next-server = \"tftp.lab\"",
        );
    }
);

// A base-url reaches dhcpd's quoted filename and dnsmasq's comma-separated
// dhcp-boot: a quote or a comma would inject an option.
invalid!(
    base_url_with_a_quote,
    "invalid base-url `http://10.77.0.1:8080/a\";filename\"http://127.0.0.1/evil.ipxe\";/`",
    "bootc.toml:3:12",
    |s| {
        s.edit(
            "bootc.toml",
            "\"http://10.77.0.1:8080/boot/\"",
            r#"'http://10.77.0.1:8080/a";filename"http://127.0.0.1/evil.ipxe";/'"#,
        );
    }
);

invalid!(
    base_url_with_a_comma,
    "invalid base-url `http://10.77.0.1:8080/a,evil.ipxe,,127.0.0.1/`",
    "bootc.toml:3:12",
    |s| {
        s.edit(
            "bootc.toml",
            "\"http://10.77.0.1:8080/boot/\"",
            "\"http://10.77.0.1:8080/a,evil.ipxe,,127.0.0.1/\"",
        );
    }
);

invalid!(
    artifact_url_without_a_host,
    "artifact URL cannot be written into an iPXE script",
    "images/linux.toml:2:18",
    |s| {
        s.edit(
            "images/linux.toml",
            "{ path = \"artifacts/vmlinuz\" }",
            &format!(
                "{{ url = \"http:///etc/passwd\", sha256 = \"{}\" }}",
                "a".repeat(64)
            ),
        );
    }
);

invalid!(
    artifact_url_file_name_unsafe,
    "artifact file name `linux(1)` cannot be used in a URL",
    "images/linux.toml:2:18",
    |s| {
        s.edit(
            "images/linux.toml",
            "{ path = \"artifacts/vmlinuz\" }",
            &format!(
                "{{ url = \"http://mirror/linux(1)\", sha256 = \"{}\" }}",
                "a".repeat(64)
            ),
        );
    }
);

// With the default artifact root (the whole site), `.git/config` would be
// publishable: it holds the credentials CI checkouts persist.
invalid!(
    artifact_in_a_hidden_folder,
    "local artifact `.git/config` is inside the hidden `.git`",
    "images/linux.toml:3:20",
    |s| {
        s.write(
            ".git/config",
            "[http]\n\textraheader = AUTHORIZATION: basic c2VjcmV0\n",
        );
        s.edit("bootc.toml", "artifact-roots = [\"artifacts\"]\n", "");
        s.edit("images/linux.toml", "artifacts/initrd.img", ".git/config");
    }
);

invalid!(
    dhcp_needs_base_url,
    "[dhcp] needs [site] base-url",
    "bootc.toml:6:1",
    |s| {
        s.edit(
            "bootc.toml",
            "base-url = \"http://10.77.0.1:8080/boot/\"\n",
            "",
        );
    }
);

// --- References --------------------------------------------------------------

invalid!(
    unknown_role,
    "role `wroker` does not exist",
    "machines/rack1.toml:2:8",
    |s| {
        s.edit(
            "machines/rack1.toml",
            "role = \"worker\"",
            "role = \"wroker\"",
        );
    }
);

invalid!(
    unknown_image,
    "image `linx` does not exist",
    "roles/base.toml:2:9",
    |s| {
        s.edit("roles/base.toml", "\"linux\"", "\"linx\"");
    }
);

invalid!(
    unknown_extends,
    "role `bse` does not exist",
    "roles/worker.toml:2:11",
    |s| {
        s.edit("roles/worker.toml", "\"base\"", "\"bse\"");
    }
);

invalid!(
    extends_cycle,
    "roles extend each other in a cycle: base -> worker -> base",
    "roles/base.toml:5:11",
    |s| {
        s.append("roles/base.toml", "extends = \"worker\"\n");
    }
);

invalid!(
    fallback_missing,
    "fallback `rescue` is neither a role nor local, menu or shell",
    "bootc.toml:4:12",
    |s| {
        s.edit(
            "bootc.toml",
            "fallback = \"local\"",
            "fallback = \"rescue\"",
        );
    }
);

invalid!(
    role_without_image,
    "role `disk` boots no image",
    "roles/disk.toml:1:1",
    |s| {
        s.edit("roles/disk.toml", "image = \"disk\"\n", "");
    }
);

invalid!(
    missing_template,
    "template `cloud-init.yml.j2` does not exist",
    "roles/worker.toml:4:25",
    |s| {
        s.edit(
            "roles/worker.toml",
            "cloud-init.yaml.j2",
            "cloud-init.yml.j2",
        );
    }
);

// --- Images and artifacts ------------------------------------------------------

invalid!(
    image_two_forms,
    "image `disk` has more than one form: kernel, local",
    "images/disk.toml:1:9",
    |s| {
        s.edit(
            "images/disk.toml",
            "local = true",
            "local = true\nkernel = { path = \"artifacts/vmlinuz\" }",
        );
    }
);

invalid!(
    image_no_form,
    "image `disk` says nothing to boot",
    "images/disk.toml:1:1",
    |s| {
        s.write("images/disk.toml", "description = \"nothing\"\n");
    }
);

invalid!(
    artifact_missing,
    "local artifact `artifacts/vmlinuz-6.1` does not exist",
    "images/linux.toml:2:19",
    |s| {
        s.edit(
            "images/linux.toml",
            "artifacts/vmlinuz\"",
            "artifacts/vmlinuz-6.1\"",
        );
    }
);

invalid!(
    artifact_not_regular,
    "local artifact `artifacts` is not a regular file",
    "images/linux.toml:2:19",
    |s| {
        s.edit("images/linux.toml", "artifacts/vmlinuz\"", "artifacts\"");
    }
);

invalid!(
    artifact_outside_root,
    "local artifact `roles/base.toml` is outside every artifact root",
    "images/linux.toml:2:19",
    |s| {
        s.edit(
            "images/linux.toml",
            "artifacts/vmlinuz\"",
            "roles/base.toml\"",
        );
    }
);

invalid!(
    artifact_symlink_escape,
    "local artifact `artifacts/shadow` is outside every artifact root",
    "images/linux.toml:2:19",
    |s| {
        std::os::unix::fs::symlink("/etc/passwd", s.path("artifacts/shadow")).unwrap();
        s.edit(
            "images/linux.toml",
            "artifacts/vmlinuz\"",
            "artifacts/shadow\"",
        );
    }
);

invalid!(
    artifact_dotdot_escape,
    "local artifact `artifacts/../bootc.toml` is outside every artifact root",
    "images/linux.toml:2:19",
    |s| {
        s.edit(
            "images/linux.toml",
            "artifacts/vmlinuz\"",
            "artifacts/../bootc.toml\"",
        );
    }
);

invalid!(
    remote_unpinned,
    "remote artifact `http://mirror.lab/linux` is not pinned",
    "images/linux.toml:2:18",
    |s| {
        s.edit(
            "images/linux.toml",
            "{ path = \"artifacts/vmlinuz\" }",
            "{ url = \"http://mirror.lab/linux\" }",
        );
    }
);

invalid!(
    remote_bad_scheme,
    "artifact URL `ftp://mirror.lab/linux` is not http or https",
    "images/linux.toml:2:18",
    |s| {
        s.edit(
        "images/linux.toml",
        "{ path = \"artifacts/vmlinuz\" }",
        "{ url = \"ftp://mirror.lab/linux\", sha256 = \"d8808aa4ca188560da1e6d749dcb930c87a5fd8b11ebff1f3fa6d728af35203d\" }",
    );
    }
);

invalid!(
    remote_bad_pin,
    "invalid sha256 pin",
    "images/linux.toml:2:54",
    |s| {
        s.edit(
            "images/linux.toml",
            "{ path = \"artifacts/vmlinuz\" }",
            "{ url = \"http://mirror.lab/linux\", sha256 = \"abc\" }",
        );
    }
);

invalid!(
    artifact_path_and_url,
    "an artifact has either `path` or `url`, not both",
    "images/linux.toml:2:46",
    |s| {
        s.edit(
            "images/linux.toml",
            "{ path = \"artifacts/vmlinuz\" }",
            "{ path = \"artifacts/vmlinuz\", url = \"http://mirror.lab/linux\" }",
        );
    }
);

// --- iPXE safety -------------------------------------------------------------

invalid!(
    arg_whitespace,
    "kernel argument `a b` cannot be written into an iPXE script",
    "machines/rack1.toml:14:16",
    |s| {
        s.edit("machines/rack1.toml", "\"nomodeset\"", "\"a b\"");
    }
);

invalid!(
    arg_setting_expansion,
    "kernel argument `ip=${net0/ip}` cannot be written into an iPXE script",
    "machines/rack1.toml:14:16",
    |s| {
        s.edit("machines/rack1.toml", "\"nomodeset\"", "\"ip=${net0/ip}\"");
    }
);

invalid!(
    arg_or_operator,
    "kernel argument `||` cannot be written into an iPXE script",
    "machines/rack1.toml:14:16",
    |s| {
        s.edit("machines/rack1.toml", "\"nomodeset\"", "\"||\"");
    }
);

invalid!(
    arg_and_operator,
    "kernel argument `&&` cannot be written into an iPXE script",
    "machines/rack1.toml:14:16",
    |s| {
        s.edit("machines/rack1.toml", "\"nomodeset\"", "\"&&\"");
    }
);

invalid!(
    arg_semicolon,
    "kernel argument `;` cannot be written into an iPXE script",
    "machines/rack1.toml:14:16",
    |s| {
        s.edit("machines/rack1.toml", "\"nomodeset\"", "\";\"");
    }
);

invalid!(
    arg_comment,
    "kernel argument `#quiet` cannot be written into an iPXE script",
    "machines/rack1.toml:14:16",
    |s| {
        s.edit("machines/rack1.toml", "\"nomodeset\"", "\"#quiet\"");
    }
);

invalid!(
    arg_control_character,
    "kernel argument `a\\u{7}b` cannot be written into an iPXE script",
    "machines/rack1.toml:14:16",
    |s| {
        s.edit("machines/rack1.toml", "\"nomodeset\"", "\"a\\u0007b\"");
    }
);

invalid!(
    arg_unsafe_after_rendering,
    "kernel argument `worker.tier=gold silver` cannot be written into an iPXE script",
    "roles/worker.toml:3:16",
    |s| {
        s.edit(
            "roles/base.toml",
            "tier = \"gold\"",
            "tier = \"gold silver\"",
        );
    }
);

invalid!(
    url_unsafe,
    "artifact URL cannot be written into an iPXE script",
    "images/linux.toml:2:18",
    |s| {
        s.edit(
        "images/linux.toml",
        "{ path = \"artifacts/vmlinuz\" }",
        "{ url = \"http://mirror.lab/${x}/linux\", sha256 = \"d8808aa4ca188560da1e6d749dcb930c87a5fd8b11ebff1f3fa6d728af35203d\" }",
    );
    }
);

// --- Templates ---------------------------------------------------------------

invalid!(
    template_unclosed_at_the_end,
    "template error in templates/cloud-init.yaml.j2: `{%` is never closed",
    "templates/cloud-init.yaml.j2:4:1",
    |s| {
        s.edit(
            "templates/cloud-init.yaml.j2",
            "# tier",
            "{% if true\n# tier",
        );
    }
);

invalid!(
    template_syntax,
    "template error in templates/cloud-init.yaml.j2: syntax error",
    "templates/cloud-init.yaml.j2:3:",
    |s| {
        s.edit(
            "templates/cloud-init.yaml.j2",
            "fqdn: {{ machine.name }}",
            "fqdn: {{ machine.name + }}",
        );
    }
);

// An unclosed `{{` is reported where it opens, not where the parser noticed
// (the next line, or the end of the file).
invalid!(
    template_unclosed_at_its_line,
    "template error in templates/cloud-init.yaml.j2: `{{` is never closed",
    "templates/cloud-init.yaml.j2:2:11",
    |s| {
        s.edit(
            "templates/cloud-init.yaml.j2",
            "hostname: {{ machine.name }}",
            "hostname: {{ machine.name }",
        );
    }
);

invalid!(
    template_undefined_in_file,
    "template error in templates/cloud-init.yaml.j2: undefined value",
    "templates/cloud-init.yaml.j2:4:",
    |s| {
        s.edit(
            "templates/cloud-init.yaml.j2",
            "{{ vars.tier }}",
            "{{ vars.tire }}",
        );
    }
);

// A DHCP configuration's hosts are read one by one; `check` renders the
// configuration for its problems only (its text goes nowhere) and must
// report the same error as `build`.
invalid!(
    template_undefined_in_dhcp_host,
    "template error in templates/dhcpd.conf.j2: undefined value",
    "templates/dhcpd.conf.j2:2:",
    |s| {
        s.write(
            "templates/dhcpd.conf.j2",
            "{% for s in dhcp.subnets %}{% for h in s.hosts %}{{ h.mac }}\n\
             {{ h.id }} {{ h.nic.name }}\n{% endfor %}{% endfor %}",
        );
    }
);

invalid!(
    template_undefined_in_arg,
    "template error: undefined value",
    "roles/worker.toml:3:",
    |s| {
        s.edit("roles/worker.toml", "vars.tier", "vars.teir");
    }
);

invalid!(
    fallback_role_uses_machine,
    "template error: undefined value",
    "roles/base.toml:3:",
    |s| {
        s.edit("bootc.toml", "fallback = \"local\"", "fallback = \"base\"");
        s.edit("roles/base.toml", "{{ role.name }}", "{{ machine.name }}");
    }
);

invalid!(
    dhcp_without_subnet,
    "[dhcp] declares no subnet",
    "bootc.toml:7:1",
    |s| {
        let text = s.read("bootc.toml");
        let start = text.find("[[dhcp.subnet]]").unwrap();
        let end = text.find("[ipxe]").unwrap();
        s.write("bootc.toml", &format!("{}{}", &text[..start], &text[end..]));
    }
);

invalid!(
    pool_holds_the_gateway,
    "the pool 10.77.0.1-10.77.0.200 holds the gateway 10.77.0.1",
    "bootc.toml:12:8",
    |s| {
        s.edit(
            "bootc.toml",
            "next-server = \"10.77.0.1\"",
            "next-server = \"10.77.0.250\"",
        );
        s.edit(
            "bootc.toml",
            "\"10.77.0.100\", \"10.77.0.200\"",
            "\"10.77.0.1\", \"10.77.0.200\"",
        );
        s.edit("machines/rack1.toml", "10.77.0.11", "10.77.0.211");
        s.edit("machines/rack1.toml", "10.77.0.12", "10.77.0.212");
        s.edit("machines/sub/rack2.toml", "10.77.0.13", "10.77.0.213");
    }
);

invalid!(
    pool_holds_the_next_server,
    "the pool 10.77.0.100-10.77.0.200 holds the next-server 10.77.0.150",
    "bootc.toml:12:8",
    |s| {
        s.edit(
            "bootc.toml",
            "next-server = \"10.77.0.1\"",
            "next-server = \"10.77.0.150\"",
        );
    }
);

invalid!(
    machine_reserves_the_gateway,
    "IP address 10.77.0.1 is used twice",
    "machines/rack1.toml:8:6",
    |s| {
        s.edit("machines/rack1.toml", "10.77.0.11", "10.77.0.1");
    }
);

// --- Several problems at once ------------------------------------------------

#[test]
fn every_problem_is_reported_in_one_run() {
    let s = Site::fixture("basic");
    s.edit(
        "machines/rack1.toml",
        "\"52:54:00:aa:bb:01\"",
        "\"52:54:00:aa:bb\"",
    );
    s.edit("machines/sub/rack2.toml", "10.77.0.13", "10.77.0.150");
    s.edit("roles/base.toml", "\"linux\"", "\"linx\"");
    s.edit("images/disk.toml", "local = true", "local = false");
    let r = s.build();
    assert_eq!(r.code, 1);
    assert!(!s.path("public").exists());
    assert_eq!(r.blocks("error").len(), 4, "{}", r.stderr);
    assert!(
        r.stderr.contains("error: the site is invalid: 4 errors"),
        "{}",
        r.stderr
    );
    insta::assert_snapshot!(r.errors());
}

#[test]
fn every_toml_problem_of_one_file_is_reported() {
    let s = Site::fixture("basic");
    // node02 gets an unknown key and a value of the wrong type, a new machine
    // misses its name, and node01 stays valid: three errors, all reported,
    // and node01 still counts (no "role not used" warnings follow).
    s.edit(
        "machines/rack1.toml",
        "kernel-args = [\"nomodeset\"]",
        "kernel-args = [\"nomodeset\"]\ncolour = \"red\"\nlabels = { rack = [2] }",
    );
    s.append(
        "machines/rack1.toml",
        "\n[[machine]]\nmac = \"52:54:00:aa:bb:07\"\n",
    );
    s.edit(
        "roles/worker.toml",
        "description = \"Worker\"",
        "descripton = \"Worker\"\nextend = \"base\"",
    );
    let r = s.build();
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!s.path("public").exists());
    assert_eq!(r.blocks("error").len(), 5, "{}", r.stderr);
    for want in [
        "--> machines/rack1.toml:15:1",
        "--> machines/rack1.toml:16:19",
        "--> machines/rack1.toml:19:1",
        "--> roles/worker.toml:1:1",
        "--> roles/worker.toml:2:1",
    ] {
        assert!(r.stderr.contains(want), "{want} missing:\n{}", r.stderr);
    }
    assert!(!r.stderr.contains("is not used"), "{}", r.stderr);
    insta::assert_snapshot!(r.errors());
}

#[test]
fn check_json_gives_file_line_column() {
    let s = Site::fixture("basic");
    s.edit(
        "machines/rack1.toml",
        "role = \"worker\"",
        "role = \"wroker\"",
    );
    let r = s.run(&["check", ".", "--format", "json"]);
    assert_eq!(r.code, 1);
    let j = r.json();
    let errors: Vec<&serde_json::Value> = j["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["severity"] == "error")
        .collect();
    assert_eq!(errors.len(), 1, "{j:#}");
    assert_eq!(errors[0]["message"], "role `wroker` does not exist");
    assert_eq!(errors[0]["file"], "machines/rack1.toml");
    assert_eq!(errors[0]["line"], 2);
    assert_eq!(errors[0]["column"], 8);
    assert_eq!(errors[0]["help"][0], "did you mean `worker`?");
}

#[test]
fn check_github_annotations() {
    let s = Site::fixture("basic");
    s.edit(
        "machines/rack1.toml",
        "role = \"worker\"",
        "role = \"wroker\"",
    );
    let r = s.run(&["check", ".", "--format", "github"]);
    assert_eq!(r.code, 1);
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("::error"))
        .expect("an error annotation");
    assert_eq!(
        line,
        "::error file=machines/rack1.toml,line=2,col=8,title=bootc::role `wroker` does not exist: no such role%0Ahelp: did you mean `worker`?"
    );
}

#[test]
fn warnings_do_not_fail() {
    let s = Site::fixture("basic");
    s.write("roles/spare.toml", "image = \"disk\"\n");
    s.edit("machines/sub/rack2.toml", "ip = \"10.77.0.13\"\n", "");
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let warnings = r.blocks("warning").concat();
    assert!(
        warnings.contains("warning[unused-role]: role `spare` is not used by any machine"),
        "{warnings}"
    );
    assert!(
        warnings.contains("warning[no-fixed-ip]: machine `node03` has no fixed IP address"),
        "{warnings}"
    );
    assert!(s.path("public/http/boot.ipxe").exists());
}

#[test]
fn missing_site_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let r: crate::harness::Run = crate::harness::bootc()
        .args(["check", "."])
        .current_dir(dir.path())
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no bootc.toml here"), "{}", r.stderr);
}

invalid!(
    description_unsafe,
    "description cannot be written into an iPXE menu",
    "roles/worker.toml:1:15",
    |s| {
        s.edit("roles/worker.toml", "\"Worker\"", "\"Worker ${x}\"");
    }
);

invalid!(
    remote_url_names_no_file,
    "artifact URL `http://mirror.lab` names no file",
    "images/linux.toml:2:18",
    |s| {
        s.edit(
        "images/linux.toml",
        "{ path = \"artifacts/vmlinuz\" }",
        "{ url = \"http://mirror.lab\", sha256 = \"d8808aa4ca188560da1e6d749dcb930c87a5fd8b11ebff1f3fa6d728af35203d\" }",
    );
    }
);

#[test]
fn kernel_args_of_a_non_kernel_image_warn() {
    let s = Site::fixture("basic");
    s.edit(
        "machines/sub/rack2.toml",
        "role = \"disk\"",
        "role = \"disk\"\nkernel-args = [\"quiet\"]",
    );
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let w = r.blocks("warning").concat();
    assert!(w.contains("warning[unused-kernel-args]: kernel arguments are not used: image `disk` boots local\n  --> machines/sub/rack2.toml:6:16"), "{w}");
}

#[test]
fn a_broken_subnet_is_reported_once() {
    let s = Site::fixture("basic");
    s.edit("bootc.toml", "\"10.77.0.0/24\"", "\"10.77.0.0/33\"");
    let r = s.build();
    assert_eq!(r.code, 1);
    assert_eq!(r.blocks("error").len(), 1, "{}", r.stderr);
    assert!(
        r.errors().contains("error: invalid subnet `10.77.0.0/33`"),
        "{}",
        r.stderr
    );
}

#[test]
fn github_annotations_show_the_other_place_as_a_notice() {
    let s = Site::fixture("basic");
    s.edit(
        "machines/sub/rack2.toml",
        "52:54:00:aa:bb:03",
        "52-54-00-AA-BB-01",
    );
    let r = s.run(&["check", ".", "--format", "github"]);
    assert_eq!(r.code, 1);
    let lines: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| !l.starts_with("::warning"))
        .collect();
    assert_eq!(
        lines,
        [
            "::error file=machines/sub/rack2.toml,line=3,col=7,title=bootc::MAC address 52:54:00:aa:bb:01 is used twice: again here, for `node03`%0Ahelp: one NIC belongs to one machine",
            "::notice file=machines/rack1.toml,line=7,col=7,title=bootc::MAC address 52:54:00:aa:bb:01 is used twice: first used by `node01`",
        ]
    );
}
