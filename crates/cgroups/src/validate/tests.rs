use super::*;

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn field_of(json: &str) -> String {
    match validate(&res(json)) {
        Err(Error::Invalid { field, .. }) => field,
        Ok(()) => panic!("{json} validated"),
    }
}

#[test]
fn accepts_a_typical_docker_spec() {
    let r = res(r#"{
        "devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rwm"}
        ],
        "memory": {"limit": 536870912, "reservation": 268435456, "swap": 1073741824,
                   "swappiness": 60, "disableOOMKiller": false},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
        "pids": {"limit": 100},
        "blockIO": {"weight": 500,
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
        "unified": {"memory.high": "1G"}
    }"#);
    validate(&r).unwrap();
    validate(&LinuxResources::default()).unwrap();
}

#[test]
fn memory_errors_name_the_field() {
    assert_eq!(
        field_of(r#"{"memory": {"limit": -5}}"#),
        "linux.resources.memory.limit"
    );
    assert_eq!(
        field_of(r#"{"memory": {"limit": 100, "reservation": 200}}"#),
        "linux.resources.memory.reservation"
    );
    assert_eq!(
        field_of(r#"{"memory": {"limit": 200, "swap": 100}}"#),
        "linux.resources.memory.swap"
    );
    assert_eq!(
        field_of(r#"{"memory": {"swap": 100}}"#),
        "linux.resources.memory.swap"
    );
    assert_eq!(
        field_of(r#"{"memory": {"swappiness": 101}}"#),
        "linux.resources.memory.swappiness"
    );
    validate(&res(r#"{"memory": {"limit": -1, "swap": -1}}"#)).unwrap();
    validate(&res(r#"{"memory": {"limit": 100, "swap": 100}}"#)).unwrap();
}

#[test]
fn cpu_errors_name_the_field() {
    let cases = [
        (r#"{"cpu": {"shares": 1}}"#, "linux.resources.cpu.shares"),
        (
            r#"{"cpu": {"shares": 300000}}"#,
            "linux.resources.cpu.shares",
        ),
        (r#"{"cpu": {"quota": 500}}"#, "linux.resources.cpu.quota"),
        (r#"{"cpu": {"quota": -7}}"#, "linux.resources.cpu.quota"),
        (
            r#"{"cpu": {"quota": 50000, "period": 10}}"#,
            "linux.resources.cpu.period",
        ),
        (
            r#"{"cpu": {"period": 2000000}}"#,
            "linux.resources.cpu.period",
        ),
        (r#"{"cpu": {"cpus": "0-"}}"#, "linux.resources.cpu.cpus"),
        (r#"{"cpu": {"cpus": "3-1"}}"#, "linux.resources.cpu.cpus"),
        (r#"{"cpu": {"mems": "a"}}"#, "linux.resources.cpu.mems"),
        (r#"{"cpu": {"idle": 2}}"#, "linux.resources.cpu.idle"),
        (
            r#"{"cpu": {"realtimeRuntime": 2000, "realtimePeriod": 1000}}"#,
            "linux.resources.cpu.realtimeRuntime",
        ),
    ];
    for (json, field) in cases {
        assert_eq!(field_of(json), field, "{json}");
    }
    let msg = validate(&res(r#"{"cpu": {"quota": 500}}"#))
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with("linux.resources.cpu.quota: "), "{msg}");
    validate(&res(r#"{"cpu": {"quota": -1, "shares": 0, "cpus": ""}}"#)).unwrap();
}

#[test]
fn cpuset_lists() {
    assert_eq!(cpuset_list("0-2,5").unwrap(), vec![0, 1, 2, 5]);
    assert_eq!(cpuset_list(" 3 \n").unwrap(), vec![3]);
    assert!(cpuset_list("").unwrap().is_empty());
    for bad in ["1,,2", "-1", "1-2-3", "x", "0-99999999"] {
        assert!(cpuset_list(bad).is_err(), "{bad}");
    }
}

#[test]
fn blkio_devices_and_others_name_the_field() {
    let cases = [
        (
            r#"{"blockIO": {"weight": 5}}"#,
            "linux.resources.blockIO.weight",
        ),
        (
            r#"{"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 2000}]}}"#,
            "linux.resources.blockIO.weightDevice[0].weight",
        ),
        (
            r#"{"blockIO": {"throttleWriteIOPSDevice": [{"major": -8, "minor": 0, "rate": 1}]}}"#,
            "linux.resources.blockIO.throttleWriteIOPSDevice[0]",
        ),
        (
            r#"{"devices": [{"allow": true, "access": "rwm"}, {"allow": true, "type": "c", "access": "rx"}]}"#,
            "linux.resources.devices[1]",
        ),
        (
            r#"{"devices": [{"allow": true, "type": "c", "major": 99999}]}"#,
            "linux.resources.devices[0]",
        ),
        (
            r#"{"hugepageLimits": [{"pageSize": "2M", "limit": 1}]}"#,
            "linux.resources.hugepageLimits[0].pageSize",
        ),
        (
            r#"{"unified": {"../x": "1"}}"#,
            "linux.resources.unified[\"../x\"]",
        ),
    ];
    for (json, field) in cases {
        assert_eq!(field_of(json), field, "{json}");
    }
}
