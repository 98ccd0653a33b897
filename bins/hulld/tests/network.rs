//! Networking through hulld, driven by Debian's docker CLI, with hulld in a network
//! namespace of its own (bridges, veths and nftables rules never touch the host's):
//! user-defined networks with names and aliases resolved by their DNS, isolation between
//! networks and with enable_icc=false, published TCP and UDP ports on the namespace's
//! loopback, `none` and `container:` modes, Docker's errors, and afterwards nothing left
//! (links, addresses, rules); a daemon restart keeps networks and published ports.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{busybox_tar, preflight, Hulld};

const CLI: &str = "/usr/bin/docker";

/// Runs `args` in the daemon's network namespace.
fn in_ns(d: &Hulld, args: &[&str]) -> Output {
    Command::new("nsenter")
        .args(["-t", &d.pid().to_string(), "-n"])
        .args(args)
        .output()
        .expect("running nsenter")
}

/// `unshare -n` leaves `lo` down: the tests' clients use it.
fn lo_up(d: &Hulld) {
    assert!(in_ns(d, &["ip", "link", "set", "lo", "up"])
        .status
        .success());
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Link names in the daemon's namespace once `settled` holds for them (up to 10 s: a
/// stopped container's veths go with its namespace, which the kernel destroys
/// asynchronously), or as they are then.
fn links_when(d: &Hulld, settled: impl Fn(&[String]) -> bool) -> Vec<String> {
    let mut l = links(d);
    for _ in 0..100 {
        if settled(&l) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        l = links(d);
    }
    l
}

/// Link names in the daemon's namespace.
fn links(d: &Hulld) -> Vec<String> {
    text(&in_ns(d, &["ip", "-o", "link"]))
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|n| {
            n.trim_end_matches(':')
                .split('@')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

/// hull's nftables table, as text (empty when there is none).
fn rules(d: &Hulld) -> String {
    text(&in_ns(d, &["nft", "list", "table", "ip", "hull"]))
}

/// A TCP client in the daemon's namespace: what `host:port` says (retried briefly while
/// the server starts).
fn tcp_says(d: &Hulld, host: &str, port: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = text(&in_ns(d, &["busybox", "nc", "-w", "2", host, port]));
        if !out.is_empty() || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs a client container on `net`: whether `nc name 80` got the server's "hi".
fn reaches(d: &Hulld, net: &str, target: &str) -> bool {
    let out = d.docker(
        CLI,
        &[
            "run",
            "--rm",
            "--network",
            net,
            "busybox",
            "nc",
            "-w",
            "2",
            target,
            "80",
        ],
    );
    String::from_utf8_lossy(&out.stdout).contains("hi")
}

/// A server container answering "hi" on TCP port 80.
fn server(d: &Hulld, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "nc", "-ll", "-p", "80", "-e", "echo", "hi"]);
    d.ok(CLI, &args).trim().to_string()
}

fn inspect(d: &Hulld, what: &str, name: &str) -> serde_json::Value {
    let out = d.ok(CLI, &[what, "inspect", name]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

#[test]
fn user_networks_resolve_names_and_stay_apart() {
    if !preflight(&["/usr/bin/nsenter", "/usr/sbin/nft"]) {
        return;
    }
    let d = Hulld::start_isolated();
    d.ok(CLI, &["load", "-i", busybox_tar().to_str().unwrap()]);
    lo_up(&d);

    let n1 = d.ok(
        CLI,
        &["network", "create", "--subnet", "10.91.0.0/24", "n1"],
    );
    let n1 = n1.trim().to_string();
    d.ok(
        CLI,
        &["network", "create", "--subnet", "10.92.0.0/24", "n2"],
    );
    d.ok(
        CLI,
        &[
            "network",
            "create",
            "--subnet",
            "10.93.0.0/24",
            "-o",
            "com.docker.network.bridge.enable_icc=false",
            "n3",
        ],
    );
    // Bad input: Docker's codes, and nothing made.
    let before = links(&d);
    let err = d.fails(
        CLI,
        &["network", "create", "--subnet", "10.91.0.128/25", "n4"],
    );
    assert!(err.contains("overlaps"), "{err}");
    let err = d.fails(CLI, &["network", "create", "n1"]);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(links(&d), before);
    let (code, _) = d.curl(
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"Name":"n1"}"#,
        ],
        "/networks/create",
    );
    assert_eq!(code, 409);
    let (code, _) = d.curl(
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"Name":"n5","IPAM":{"Config":[{"Subnet":"10.92.0.0/16"}]}}"#,
        ],
        "/networks/create",
    );
    assert_eq!(code, 400);
    let (code, _) = d.curl(&[], "/networks/nosuchnet");
    assert_eq!(code, 404);
    let (code, body) = d.curl(
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"Image":"busybox","HostConfig":{"NetworkMode":"nosuchnet"}}"#,
        ],
        "/containers/create",
    );
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("network nosuchnet not found"), "{body}");

    // ls: the predefined networks and ours; filters.
    let ls = d.ok(CLI, &["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    for want in [
        "bridge bridge",
        "host host",
        "none null",
        "n1 bridge",
        "n2 bridge",
    ] {
        assert!(ls.lines().any(|l| l == want), "{want} in {ls}");
    }
    let custom = d.ok(
        CLI,
        &[
            "network",
            "ls",
            "-q",
            "--no-trunc",
            "--filter",
            "type=custom",
            "--filter",
            "name=n1",
        ],
    );
    assert_eq!(custom.trim(), n1);
    let err = d.fails(CLI, &["network", "rm", "bridge"]);
    assert!(err.contains("pre-defined"), "{err}");

    // Names, aliases and short IDs resolve on n1; n2 cannot reach n1.
    let web = server(&d, "web", &["--network", "n1", "--network-alias", "svc"]);
    assert!(reaches(&d, "n1", "web"), "web by name\n{}", d.log());
    assert!(reaches(&d, "n1", "svc"), "web by alias");
    assert!(reaches(&d, "n1", &web[..12]), "web by short ID");
    let c = inspect(&d, "container", "web");
    let ip = c["NetworkSettings"]["Networks"]["n1"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(ip.starts_with("10.91.0."), "{c}");
    assert_eq!(
        c["NetworkSettings"]["Networks"]["n1"]["NetworkID"],
        n1.as_str()
    );
    assert!(c["NetworkSettings"]["Networks"]["n1"]["Aliases"]
        .to_string()
        .contains("svc"));
    assert!(!reaches(&d, "n2", &ip), "n2 reached a container on n1");
    let net = inspect(&d, "network", "n1");
    assert_eq!(net["Containers"][&web]["Name"], "web", "{net}");
    assert_eq!(net["IPAM"]["Config"][0]["Subnet"], "10.91.0.0/24");
    assert_eq!(net["Scope"], "local");

    // --ip and connect/disconnect.
    d.ok(
        CLI,
        &[
            "run",
            "-d",
            "--name",
            "fixed",
            "--network",
            "n2",
            "--ip",
            "10.92.0.50",
            "busybox",
            "sleep",
            "100",
        ],
    );
    let eth0 = d.ok(
        CLI,
        &["exec", "fixed", "ip", "-4", "-o", "addr", "show", "eth0"],
    );
    assert!(eth0.contains("10.92.0.50/24"), "{eth0}");
    d.ok(CLI, &["network", "connect", "n1", "fixed"]);
    let all = d.ok(CLI, &["exec", "fixed", "ip", "-4", "-o", "addr"]);
    assert!(all.contains("10.91.0."), "{all}");
    let out = d.ok(CLI, &["exec", "fixed", "nc", "-w", "2", &ip, "80"]);
    assert!(out.contains("hi"), "connected container reaches n1");
    d.ok(CLI, &["network", "disconnect", "n1", "fixed"]);
    let all = d.ok(CLI, &["exec", "fixed", "ip", "-4", "-o", "addr"]);
    assert!(!all.contains("10.91.0."), "{all}");

    // enable_icc=false: containers on n3 cannot reach each other.
    server(&d, "lonely", &["--network", "n3"]);
    assert!(
        !reaches(&d, "n3", "lonely"),
        "enable_icc=false let traffic through"
    );

    // rm with containers attached fails; nothing changes.
    let err = d.fails(CLI, &["network", "rm", "n1"]);
    assert!(err.contains("active endpoints"), "{err}");

    // On the default bridge: no name resolution, --link adds a hosts entry.
    server(&d, "old", &[]);
    let hosts = d.ok(
        CLI,
        &[
            "run",
            "--rm",
            "--link",
            "old:legacy",
            "busybox",
            "cat",
            "/etc/hosts",
        ],
    );
    assert!(hosts.contains("legacy"), "{hosts}");
    let out = d.ok(
        CLI,
        &[
            "run",
            "--rm",
            "--link",
            "old:legacy",
            "busybox",
            "nc",
            "-w",
            "2",
            "legacy",
            "80",
        ],
    );
    assert!(out.contains("hi"), "--link: {out}");
    assert!(
        !reaches(&d, "bridge", "old"),
        "the default bridge has no name resolution"
    );

    for c in ["web", "fixed", "lonely", "old"] {
        d.ok(CLI, &["rm", "-f", c]);
    }
    d.ok(CLI, &["network", "rm", "n1", "n2", "n3"]);
    let pruned = d.ok(CLI, &["network", "ls", "--filter", "type=custom", "-q"]);
    assert_eq!(pruned.trim(), "");
    assert_eq!(
        links_when(&d, |l| l == ["lo", "hull0"]),
        ["lo", "hull0"],
        "links left"
    );
    let addrs = text(&in_ns(&d, &["ip", "-4", "-o", "addr"]));
    assert!(!addrs.contains("10.9"), "addresses left: {addrs}");
    let nft = rules(&d);
    assert!(!nft.contains("hull ep"), "endpoint rules left: {nft}");
    assert!(!nft.contains(&n1[..12]), "network rules left: {nft}");
}

#[test]
fn published_ports_none_and_container_mode() {
    if !preflight(&["/usr/bin/nsenter", "/usr/sbin/nft", "/usr/bin/python3"]) {
        return;
    }
    let d = Hulld::start_isolated();
    d.ok(CLI, &["load", "-i", busybox_tar().to_str().unwrap()]);
    lo_up(&d);

    // TCP: a fixed host port and a random one (-P through ExposedPorts).
    server(&d, "web", &["-p", "18080:80", "--expose", "81", "-P"]);
    let out = tcp_says(&d, "127.0.0.1", "18080");
    assert_eq!(out.trim(), "hi", "{}", d.log());
    let port = d.ok(CLI, &["port", "web", "80/tcp"]);
    assert!(port.contains("0.0.0.0:18080"), "{port}");
    let random = d.ok(CLI, &["port", "web", "81/tcp"]);
    assert!(random.contains("0.0.0.0:"), "-P: {random}");
    let ps = d.ok(
        CLI,
        &["ps", "--format", "{{.Ports}}", "--filter", "name=web"],
    );
    assert!(ps.contains("0.0.0.0:18080->80/tcp"), "{ps}");
    let c = inspect(&d, "container", "web");
    assert_eq!(
        c["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"], "18080",
        "{c}"
    );
    assert!(c["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .starts_with("172.17."));

    // The container's link runs at the local MTU; its default route keeps 1500 for
    // what leaves the host (read with the host's iproute2: busybox prints no metrics).
    let link = d.ok(CLI, &["exec", "web", "ip", "-o", "link", "show", "eth0"]);
    assert!(link.contains(" mtu 65535 "), "{link}");
    // and /sys shows the container's interfaces, not the host's
    let sys = d.ok(
        CLI,
        &[
            "exec",
            "web",
            "sh",
            "-c",
            "ls /sys/class/net; cat /sys/class/net/eth0/mtu",
        ],
    );
    assert_eq!(
        sys.split_whitespace().collect::<Vec<_>>(),
        ["eth0", "lo", "65535"],
        "{sys}"
    );
    let key = c["NetworkSettings"]["SandboxKey"].as_str().unwrap();
    let route = Command::new("nsenter")
        .arg(format!("--net={key}"))
        .args(["ip", "route", "show", "default"])
        .output()
        .unwrap();
    let route = text(&route);
    assert!(route.contains(" mtu 1500"), "{route}");

    // The host port is taken: a clear error, nothing left of the second container's rules.
    let tags = rules(&d).matches("hull ep").count();
    let err = d.fails(
        CLI,
        &[
            "run", "-d", "--name", "clash", "-p", "18080:80", "busybox", "sleep", "100",
        ],
    );
    assert!(err.contains("already allocated"), "{err}");
    assert_eq!(rules(&d).matches("hull ep").count(), tags);
    d.ok(CLI, &["rm", "-f", "clash"]);

    // UDP: an echo server in the container's namespace (busybox has no UDP server).
    d.ok(
        CLI,
        &[
            "run",
            "-d",
            "--name",
            "udp",
            "-p",
            "127.0.0.1:15353:5353/udp",
            "busybox",
            "sleep",
            "100",
        ],
    );
    let key = inspect(&d, "container", "udp")["NetworkSettings"]["SandboxKey"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!key.is_empty());
    let mut echo = Command::new("nsenter")
        .arg(format!("--net={key}"))
        .args(["python3", "-c", "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',5353))\nd,a=s.recvfrom(100)\ns.sendto(d.upper(),a)"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let reply = in_ns(&d, &["python3", "-c", "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.settimeout(5)\ns.sendto(b'ping',('127.0.0.1',15353))\nprint(s.recvfrom(100)[0].decode())"]);
    let _ = echo.kill();
    let _ = echo.wait();
    assert_eq!(
        text(&reply).trim(),
        "PING",
        "{}",
        String::from_utf8_lossy(&reply.stderr)
    );

    // Stopping withdraws the rules; starting again installs them.
    let veths = |l: &[String]| l.iter().filter(|l| l.starts_with("veth")).count();
    let before = veths(&links(&d));
    d.ok(CLI, &["stop", "-t", "1", "web"]);
    assert!(!rules(&d).contains("18080"), "{}", rules(&d));
    assert_eq!(
        veths(&links_when(&d, |l| veths(l) == before - 1)),
        before - 1,
        "a stopped container holds no veth"
    );
    let c = inspect(&d, "container", "web");
    assert_eq!(c["NetworkSettings"]["IPAddress"], "", "{c}");
    d.ok(CLI, &["start", "web"]);
    assert_eq!(tcp_says(&d, "127.0.0.1", "18080").trim(), "hi");

    // none: only lo. container:: the same stack.
    let none = d.ok(
        CLI,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "ip",
            "-o",
            "link",
        ],
    );
    let names: Vec<&str> = none
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(names, ["lo:"], "{none}");
    let err = d.fails(
        CLI,
        &[
            "run",
            "--rm",
            "--network",
            "container:web",
            "-p",
            "80",
            "busybox",
            "true",
        ],
    );
    assert!(err.contains("conflicting options"), "{err}");
    let mine = d.ok(
        CLI,
        &["exec", "web", "ip", "-4", "-o", "addr", "show", "eth0"],
    );
    let shared = d.ok(
        CLI,
        &[
            "run",
            "--rm",
            "--network",
            "container:web",
            "busybox",
            "ip",
            "-4",
            "-o",
            "addr",
            "show",
            "eth0",
        ],
    );
    assert_eq!(
        mine.split_whitespace().nth(3),
        shared.split_whitespace().nth(3),
        "{shared}"
    );
    let out = d.ok(
        CLI,
        &[
            "run",
            "--rm",
            "--network",
            "container:web",
            "busybox",
            "nc",
            "-w",
            "2",
            "127.0.0.1",
            "80",
        ],
    );
    assert!(out.contains("hi"), "container: shares the stack: {out}");

    for c in ["web", "udp"] {
        d.ok(CLI, &["rm", "-f", c]);
    }
    assert_eq!(
        links_when(&d, |l| l == ["lo", "hull0"]),
        ["lo", "hull0"],
        "links left"
    );
    assert!(!rules(&d).contains("hull ep"), "{}", rules(&d));
}

#[test]
fn restart_keeps_networks_and_published_ports() {
    if !preflight(&["/usr/bin/nsenter", "/usr/sbin/nft"]) {
        return;
    }
    let mut d = Hulld::start_isolated_pinned();
    d.ok(CLI, &["load", "-i", busybox_tar().to_str().unwrap()]);
    lo_up(&d);
    d.ok(
        CLI,
        &["network", "create", "--subnet", "10.94.0.0/24", "keep"],
    );
    server(&d, "web", &["--network", "keep", "-p", "18081:80"]);
    assert_eq!(tcp_says(&d, "127.0.0.1", "18081").trim(), "hi");
    d.ok(
        CLI,
        &[
            "create",
            "--name",
            "idle",
            "--network",
            "keep",
            "-p",
            "18082:80",
            "busybox",
            "true",
        ],
    );
    d.restart();
    lo_up(&d);
    let ls = d.ok(CLI, &["network", "ls", "--format", "{{.Name}}"]);
    assert!(ls.lines().any(|l| l == "keep"), "{ls}");
    assert_eq!(
        tcp_says(&d, "127.0.0.1", "18081").trim(),
        "hi",
        "{}",
        d.log()
    );
    assert!(reaches(&d, "keep", "web"), "DNS after restart");
    assert!(
        !rules(&d).contains("18082"),
        "a created container publishes nothing"
    );
    let idle = inspect(&d, "container", "idle");
    assert_eq!(
        idle["NetworkSettings"]["Networks"]["keep"]["IPAddress"], "",
        "{idle}"
    );
    let net = inspect(&d, "network", "keep");
    assert_eq!(
        net["Containers"].as_object().unwrap().len(),
        1,
        "only web: {net}"
    );
    for c in ["web", "idle"] {
        d.ok(CLI, &["rm", "-f", c]);
    }
    d.ok(CLI, &["network", "rm", "keep"]);
    let gone = |l: &[String]| {
        !l.iter()
            .any(|l| l.starts_with("veth") || l.starts_with("br-"))
    };
    assert!(gone(&links_when(&d, gone)));
    assert!(!rules(&d).contains("hull ep"));
}
