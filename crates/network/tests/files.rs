//! The per-container hosts, resolv.conf and hostname files (no root needed).

use std::fs;

use hull_network::files::{self, FilesSpec};

#[test]
fn writes_hosts_resolv_conf_and_hostname() {
    let dir = tempfile::tempdir().unwrap();
    let host_resolv = dir.path().join("host-resolv.conf");
    fs::write(
        &host_resolv,
        "# systemd-resolved\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 192.0.2.53\nsearch example.org\n",
    )
    .unwrap();
    let out = dir.path().join("c1");
    fs::create_dir(&out).unwrap();
    let spec = FilesSpec {
        hostname: "web".into(),
        domainname: Some("corp".into()),
        address: Some("172.17.0.2".parse().unwrap()),
        aliases: vec!["www".into(), "web".into()],
        extra_hosts: vec![("db".into(), "10.0.0.7".parse().unwrap())],
        ..FilesSpec::default()
    };
    files::write(&out, &spec, &host_resolv).unwrap();
    assert_eq!(
        fs::read_to_string(out.join("hosts")).unwrap(),
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n10.0.0.7\tdb\n172.17.0.2\tweb.corp web www\n"
    );
    assert_eq!(
        fs::read_to_string(out.join("resolv.conf")).unwrap(),
        "nameserver 192.0.2.53\nsearch example.org\n"
    );
    assert_eq!(fs::read_to_string(out.join("hostname")).unwrap(), "web\n");

    // none mode: no address line; a given DNS list wins over the host's
    let spec = FilesSpec {
        hostname: "solo".into(),
        dns: vec!["192.0.2.1".parse().unwrap()],
        dns_search: vec!["a.test".into()],
        dns_options: vec!["ndots:2".into()],
        ..FilesSpec::default()
    };
    files::write(&out, &spec, &dir.path().join("missing")).unwrap();
    let hosts = fs::read_to_string(out.join("hosts")).unwrap();
    assert!(!hosts.contains("solo"), "{hosts}");
    assert_eq!(
        fs::read_to_string(out.join("resolv.conf")).unwrap(),
        "nameserver 192.0.2.1\nsearch a.test\noptions ndots:2\n"
    );
    let leftovers: Vec<_> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
