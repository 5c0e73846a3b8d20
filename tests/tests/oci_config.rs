//! config.json handling (asterism_init::config), as a library: the
//! runtime-spec's fixtures, every validation rule with a config that breaks
//! it (the error must name the JSON path and the reason), the default config
//! against runc's, and the features structure against what validation accepts.

use std::path::{Path, PathBuf};

use asterism_init::config::{self, ConfigError};
use serde_json::{json, Value};

/// A bundle in a temporary directory: `rootfs/` and a config.json.
struct Bundle {
    dir: tempfile::TempDir,
}

impl Bundle {
    fn new(config: &Value) -> Bundle {
        Bundle::raw(&serde_json::to_string_pretty(config).unwrap())
    }

    fn raw(text: &str) -> Bundle {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        std::fs::write(dir.path().join("config.json"), text).unwrap();
        Bundle { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// read + validate: is this a valid config for a Linux runtime?
    fn check(&self) -> Result<(), ConfigError> {
        let spec = config::read(self.path())?;
        config::validate(&spec, self.path())
    }
}

/// Merges `patch` into `base`: objects key by key, anything else replaced
/// (`null` removes the property, as config parsing reads null as absent).
fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}

/// runc's default config (what `ipc spec` writes), with `patch` merged.
fn config_with(patch: Value) -> Value {
    let mut c: Value = serde_json::from_str(&config::default_spec_json(false)).unwrap();
    merge(&mut c, patch);
    c
}

/// The error a patched default config gets, as text.
fn error_of(patch: Value) -> String {
    match Bundle::new(&config_with(patch)).check() {
        Ok(()) => "accepted".into(),
        Err(e) => e.to_string(),
    }
}

fn accepted(patch: Value) {
    let c = config_with(patch);
    if let Err(e) = Bundle::new(&c).check() {
        panic!("refused: {e}\nconfig: {c:#}");
    }
}

fn fixtures(kind: &str) -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../init/src/config/testdata/runtime-spec")
        .join(kind);
    let mut list: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    list.sort();
    list
}

// ---------------------------------------------------------------- fixtures

#[test]
fn every_bad_fixture_is_refused_with_its_path() {
    let expected = [
        (
            "freebsd-vnet-disable.json",
            "freebsd.jail.vnet: unknown sharing mode \"disable\" (one of: new, inherit)",
        ),
        (
            "invalid-json.json",
            "config.json: invalid JSON at line 1, column 2: key must be a string",
        ),
        (
            "linux-hugepage.json",
            "linux.resources.hugepageLimits[0].pageSize: \"64kB\" is not a page size like 64KB, \
             2MB or 1GB (<size><K|M|G>B)",
        ),
        (
            "linux-netdevice.json",
            "linux.netDevices.eth0.name: must be a string, got number 23",
        ),
        (
            "linux-rdma.json",
            "linux.resources.rdma.mlx5_1.hcaHandles: must be an integer (uint32: 0 to \
             4294967295), got string \"not a uint32\"",
        ),
    ];
    let bad = fixtures("bad");
    assert_eq!(
        bad.len(),
        expected.len(),
        "a new bad fixture needs its expected error here"
    );
    for ((name, text), (want_name, want)) in bad.iter().zip(expected) {
        assert_eq!(name, want_name);
        let b = Bundle::raw(text);
        let got = b.check().expect_err(name).to_string();
        assert!(got.ends_with(want), "{name}: got {got:?}, want {want:?}");
    }
}

/// The good fixtures for Linux (and those without a platform section) are
/// accepted as configs. Three of them have no `process`: they are valid
/// configs, but `load` (create) refuses them as runc does, since start
/// would have nothing to run.
#[test]
fn every_good_linux_fixture_is_accepted() {
    let linux = [
        "linux-netdevice.json",
        "linux-rdma.json",
        "minimal-for-start.json",
        "minimal.json",
        "spec-example.json",
    ];
    for (name, text) in fixtures("good") {
        if !linux.contains(&name.as_str()) {
            continue;
        }
        let b = Bundle::raw(&text);
        b.check().unwrap_or_else(|e| panic!("{name}: {e}"));
        let has_process = serde_json::from_str::<Value>(&text).unwrap()["process"].is_object();
        match config::load(b.path()) {
            Ok(_) => assert!(has_process, "{name}"),
            Err(e) => {
                assert!(!has_process, "{name}: {e}");
                assert_eq!(
                    e.to_string(),
                    "process: is required to create a container (start runs it), and this \
                     config has none"
                );
            }
        }
    }
}

/// `create` sends init the config's own text, which init parses without
/// the schema walk (`from_checked_text`): for every config `ipc` accepts,
/// that must give the very Spec `ipc` checked, including the configs
/// oci-spec needs bridged (no process.user, a spaced execCPUAffinity,
/// the spec's spelling of the scheduler flags).
#[test]
fn init_parses_the_text_ipc_checked_to_the_same_spec() {
    let mut texts: Vec<(String, String)> = fixtures("good");
    let bridged = [
        json!({"process": {"user": null}}),
        json!({"process": {"execCPUAffinity": {"initial": " 0-1 ", "final": ""}}}),
        json!({"process": {"scheduler": {"policy": "SCHED_OTHER",
            "flags": ["SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_DL_OVERRUN"]}}}),
    ];
    for (i, patch) in bridged.into_iter().enumerate() {
        let mut c = config_with(patch);
        if c["process"]["user"].is_null() {
            c["process"].as_object_mut().unwrap().remove("user");
        }
        texts.push((format!("bridged #{i}"), serde_json::to_string(&c).unwrap()));
    }
    let mut compared = 0;
    for (name, text) in texts {
        let Ok(checked) = config::read(Bundle::raw(&text).path()) else {
            continue; // refused by ipc: init never sees it
        };
        let init_side = config::from_checked_text(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(canonical(&init_side), canonical(&checked), "{name}");
        compared += 1;
    }
    assert!(compared >= 8, "only {compared} configs compared");
}

/// A Spec as JSON, with its capability sets sorted (oci-spec keeps them
/// in hash sets, whose order differs from one parse to the next).
fn canonical(spec: &oci_spec::runtime::Spec) -> Value {
    fn sort_sets(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    let set = [
                        "bounding",
                        "effective",
                        "inheritable",
                        "permitted",
                        "ambient",
                    ];
                    if let (true, Value::Array(a)) = (set.contains(&k.as_str()), &mut *x) {
                        a.sort_by_key(|e| e.to_string());
                    }
                    sort_sets(x);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(sort_sets),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(spec).unwrap();
    sort_sets(&mut v);
    v
}

/// FreeBSD and z/OS configs on a Linux runtime: their platform section is
/// type-checked (so freebsd-vnet-disable is refused) and otherwise ignored,
/// as runc ignores it; the rest must then pass the Linux rules. The minimal
/// ones do. The examples set a hostname with no linux.namespaces at all, so
/// running them would rename the host: refused, exactly as runc refuses them
/// ("unable to set hostname without a private UTS namespace").
#[test]
fn other_platform_fixtures_are_judged_by_the_linux_rules() {
    let mut seen = 0;
    for (name, text) in fixtures("good") {
        let b = Bundle::raw(&text);
        match name.as_str() {
            "freebsd-minimal.json" | "zos-minimal.json" => {
                b.check().unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            "freebsd-example.json" | "zos-example.json" => {
                let e = b.check().expect_err(&name);
                assert_eq!(e.path, "hostname", "{name}: {e}");
                assert!(e.reason.contains("needs a uts namespace"), "{name}: {e}");
            }
            _ => continue,
        }
        seen += 1;
    }
    assert_eq!(seen, 4);
}

// ---------------------------------------------------------------- files

#[test]
fn file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    assert_eq!(
        config::load(&missing).unwrap_err().to_string(),
        format!("{}: the bundle directory does not exist", missing.display())
    );
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_eq!(
        config::load(&empty).unwrap_err().to_string(),
        format!(
            "{}: does not exist (a bundle needs one; `ipc spec` writes a default)",
            empty.join("config.json").display()
        )
    );
    let b = Bundle::raw("{\n  \"ociVersion\": \"1.0.0\",\n  \"root\": {\"path\": \"rootfs\",}\n}");
    assert_eq!(
        config::load(b.path()).unwrap_err().to_string(),
        format!(
            "{}: invalid JSON at line 3, column 29: trailing comma",
            b.path().join("config.json").display()
        )
    );
    let b = Bundle::raw("[1, 2]");
    assert_eq!(
        config::load(b.path()).unwrap_err().to_string(),
        format!(
            "{}: the config must be a JSON object, got an array",
            b.path().join("config.json").display()
        )
    );
}

#[test]
fn rootfs_must_be_an_existing_directory() {
    let b = Bundle::new(&config_with(json!({"root": {"path": "missing"}})));
    assert_eq!(
        b.check().unwrap_err().to_string(),
        format!(
            "root.path: rootfs {} does not exist",
            b.path().join("missing").display()
        )
    );
    // An absolute root.path is used as it is: here, a file of another bundle.
    let file = b.path().join("file");
    std::fs::write(&file, "").unwrap();
    let mut c = config_with(json!({"root": {"path": file}}));
    assert_eq!(
        Bundle::new(&c).check().unwrap_err().to_string(),
        format!("root.path: rootfs {} is not a directory", file.display())
    );
    c["root"]["path"] = json!(b.path().join("rootfs"));
    Bundle::new(&c).check().unwrap();
    assert_eq!(
        error_of(json!({"root": null})),
        "root: is required on Linux"
    );
    assert_eq!(
        error_of(json!({"root": {"path": ""}})),
        "root.path: must not be empty"
    );
}

// ---------------------------------------------------------------- rules

/// (patch over runc's default config, the exact error)
fn rule_cases() -> Vec<(Value, &'static str)> {
    vec![
        // ociVersion
        (json!({"ociVersion": null}), "ociVersion: is required"),
        (json!({"ociVersion": 1}), "ociVersion: must be a string, got number 1"),
        (
            json!({"ociVersion": "1.0"}),
            "ociVersion: \"1.0\" is not a SemVer 2.0.0 version (expected MAJOR.MINOR.PATCH, such as 1.0.2)",
        ),
        (
            json!({"ociVersion": "2.0.0"}),
            "ociVersion: version 2.0.0 is not supported: this runtime implements runtime-spec 1.x \
             (up to 1.3.0), and other major versions are incompatible",
        ),
        // process
        (json!({"process": {"cwd": "tmp"}}), "process.cwd: must be an absolute path"),
        (json!({"process": {"cwd": null}}), "process.cwd: is required"),
        (
            json!({"process": {"args": []}}),
            "process.args: must have at least one entry (the program to run)",
        ),
        (json!({"process": {"args": [""]}}), "process.args[0]: must not be empty"),
        (json!({"process": {"args": "sh"}}), "process.args: must be an array, got string \"sh\""),
        (
            json!({"process": {"env": ["PATH=/bin", "FOO"]}}),
            "process.env[1]: \"FOO\" is not KEY=VALUE (missing '=')",
        ),
        (json!({"process": {"env": ["=x"]}}), "process.env[0]: \"=x\": the variable name is empty"),
        (
            json!({"process": {"user": {"uid": -1}}}),
            "process.user.uid: must be an integer (uint32: 0 to 4294967295), got number -1",
        ),
        (json!({"process": {"user": {"uid": null}}}), "process.user.uid: is required"),
        (
            json!({"process": {"capabilities": {"bounding": ["CAP_KILL", "CAP_FOO"]}}}),
            "process.capabilities.bounding[1]: unknown capability \"CAP_FOO\"",
        ),
        (
            json!({"process": {"capabilities": {"ambient": ["NET_ADMIN"]}}}),
            "process.capabilities.ambient[0]: unknown capability \"NET_ADMIN\" (capabilities(7) spells it CAP_NET_ADMIN)",
        ),
        (
            json!({"process": {"rlimits": [{"type": "RLIMIT_FOO", "soft": 1, "hard": 1}]}}),
            "process.rlimits[0].type: unknown rlimit type \"RLIMIT_FOO\" (one of: RLIMIT_AS, \
             RLIMIT_CORE, RLIMIT_CPU, RLIMIT_DATA, RLIMIT_FSIZE, RLIMIT_LOCKS, RLIMIT_MEMLOCK, \
             RLIMIT_MSGQUEUE, RLIMIT_NICE, RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_RSS, RLIMIT_RTPRIO, \
             RLIMIT_RTTIME, RLIMIT_SIGPENDING, RLIMIT_STACK)",
        ),
        (
            json!({"process": {"rlimits": [
                {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1},
                {"type": "RLIMIT_CORE", "soft": 1, "hard": 1},
                {"type": "RLIMIT_NOFILE", "soft": 2, "hard": 2}]}}),
            "process.rlimits[2]: duplicate rlimit type RLIMIT_NOFILE (also at process.rlimits[0])",
        ),
        (
            json!({"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 1024}]}}),
            "process.rlimits[0]: soft limit 2048 is above hard limit 1024 for RLIMIT_NOFILE",
        ),
        (
            json!({"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1}]}}),
            "process.rlimits[0].hard: is required",
        ),
        (
            json!({"process": {"oomScoreAdj": 5000}}),
            "process.oomScoreAdj: must be between -1000 and 1000, got 5000",
        ),
        (
            json!({"process": {"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 9}}}),
            "process.ioPriority.priority: must be between 0 (highest) and 7 (lowest), got 9",
        ),
        (
            json!({"process": {"terminal": "yes"}}),
            "process.terminal: must be a boolean, got string \"yes\"",
        ),
        // hostname / domainname
        (
            json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}}),
            "hostname: setting a hostname needs a uts namespace, and linux.namespaces has no \
             \"uts\" entry (it would change the host's)",
        ),
        (
            json!({"hostname": null, "domainname": "example.org",
                   "linux": {"namespaces": [{"type": "mount"}]}}),
            "domainname: setting a domainname needs a uts namespace, and linux.namespaces has no \
             \"uts\" entry (it would change the host's)",
        ),
        (
            json!({"hostname": "h".repeat(65)}),
            "hostname: is longer than 64 bytes (HOST_NAME_MAX)",
        ),
        // mounts
        (
            json!({"mounts": [{"destination": "", "type": "tmpfs", "source": "tmpfs"}]}),
            "mounts[0].destination: must not be empty",
        ),
        (json!({"mounts": [{"type": "tmpfs"}]}), "mounts[0].destination: is required"),
        (
            json!({"mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                              {"destination": "/data", "options": ["rbind", "ro"]}]}),
            "mounts[1].source: a bind mount needs a source",
        ),
        (
            json!({"mounts": [{"destination": "/data", "source": "/srv", "options": ["bind"],
                               "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}]}),
            "mounts[0].gidMappings: must be set with uidMappings",
        ),
        (
            json!({"mounts": [{"destination": "/data", "source": "/srv", "options": ["bind", "idmap"]}]}),
            "mounts[0].options: \"idmap\" needs uidMappings and gidMappings on the mount, or a \
             user namespace to take them from",
        ),
        (
            json!({"mounts": [{"destination": "/d", "options": ["ro", 1]}]}),
            "mounts[0].options[1]: must be a string, got number 1",
        ),
        // namespaces
        (
            json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "uts"}, {"type": "foo"}]}}),
            "linux.namespaces[2].type: unknown namespace type \"foo\" (one of: mount, pid, \
             network, uts, ipc, user, cgroup, time)",
        ),
        (
            json!({"linux": {"namespaces": [{"type": "uts"}, {"type": "pid"}, {"type": "pid"}]}}),
            "linux.namespaces[2]: duplicate namespace type \"pid\"",
        ),
        (
            json!({"linux": {"namespaces": [{"type": "uts"}, {"type": "network", "path": "net"}]}}),
            "linux.namespaces[1].path: net must be an absolute path",
        ),
        (
            json!({"linux": {"namespaces": [{"type": "uts"}, {"type": "network", "path": "/nonexistent/ns"}]}}),
            "linux.namespaces[1].path: /nonexistent/ns does not exist",
        ),
        (
            json!({"linux": {"namespaces": [{"type": "uts"}, {"type": "ipc", "path": "/proc/self/status"}]}}),
            "linux.namespaces[1].path: /proc/self/status is not a namespace file (like /proc/PID/ns/ipc)",
        ),
        // user namespace and mappings
        (
            json!({"linux": {"namespaces": [{"type": "uts"}, {"type": "user"}]}}),
            "linux.uidMappings: a new user namespace needs mappings (none are set)",
        ),
        (
            json!({"linux": {"uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                             "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}}),
            "linux.uidMappings: mappings are set but linux.namespaces has no \"user\" entry",
        ),
        (
            json!({"linux": {"namespaces": [{"type": "uts"}, {"type": "user"}],
                             "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 0}],
                             "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}}),
            "linux.uidMappings[0].size: must be at least 1",
        ),
        (
            json!({"linux": {"namespaces": [{"type": "uts"}, {"type": "user"}],
                             "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10},
                                             {"containerID": 5, "hostID": 5000, "size": 10}],
                             "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}}),
            "linux.uidMappings[1]: its containerID range overlaps linux.uidMappings[0]",
        ),
        (
            json!({"linux": {"namespaces": [{"type": "uts"}, {"type": "user"}],
                             "uidMappings": [{"containerID": 0, "hostID": 4294967295u64, "size": 2}],
                             "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}}),
            "linux.uidMappings[0]: hostID + size goes past 4294967295",
        ),
        (
            json!({"process": {"user": {"uid": 1000, "gid": 0}},
                   "linux": {"namespaces": [{"type": "uts"}, {"type": "user"}],
                             "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 1000}],
                             "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 1000}]}}),
            "process.user.uid: 1000 is not mapped by linux.uidMappings",
        ),
        (
            json!({"process": {"user": {"uid": 0, "gid": 0, "additionalGids": [5, 70000]}},
                   "linux": {"namespaces": [{"type": "uts"}, {"type": "user"}],
                             "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
                             "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}}),
            "process.user.additionalGids[1]: 70000 is not mapped by linux.gidMappings",
        ),
        (
            json!({"linux": {"uidMappings": [{"containerID": 0, "hostID": 1000}]}}),
            "linux.uidMappings[0].size: is required",
        ),
        // sysctl
        (
            json!({"linux": {"namespaces": [{"type": "uts"}, {"type": "ipc"}],
                             "sysctl": {"net.ipv4.ip_forward": "1"}}}),
            "linux.sysctl[\"net.ipv4.ip_forward\"]: needs a new network namespace: \
             linux.namespaces has no \"network\" entry (it would change the host's)",
        ),
        (
            json!({"linux": {"namespaces": [{"type": "uts"}, {"type": "network", "path": "/proc/self/ns/net"}],
                             "sysctl": {"net.core.somaxconn": "256"}}}),
            "linux.sysctl[\"net.core.somaxconn\"]: is not allowed in the host's network namespace \
             (linux.namespaces[1].path is the host's)",
        ),
        (
            json!({"linux": {"namespaces": [{"type": "uts"}], "sysctl": {"kernel.shmmax": "1"}}}),
            "linux.sysctl[\"kernel.shmmax\"]: needs a new ipc namespace: linux.namespaces has no \
             \"ipc\" entry (it would change the host's)",
        ),
        (
            json!({"linux": {"namespaces": [{"type": "uts"}], "sysctl": {"fs.mqueue.msg_max": "1"}}}),
            "linux.sysctl[\"fs.mqueue.msg_max\"]: needs a new ipc namespace: linux.namespaces has \
             no \"ipc\" entry (it would change the host's)",
        ),
        (
            json!({"hostname": null, "linux": {"namespaces": [{"type": "ipc"}],
                   "sysctl": {"kernel.domainname": "x"}}}),
            "linux.sysctl[\"kernel.domainname\"]: needs a new uts namespace: linux.namespaces has \
             no \"uts\" entry (it would change the host's)",
        ),
        (
            json!({"linux": {"sysctl": {"kernel.hostname": "x"}}}),
            "linux.sysctl[\"kernel.hostname\"]: conflicts with the \"hostname\" field: set that instead",
        ),
        (
            json!({"linux": {"sysctl": {"vm.swappiness": "10"}}}),
            "linux.sysctl[\"vm.swappiness\"]: is not namespaced: setting it in a container would \
             change the host (runc refuses it too)",
        ),
        (
            json!({"linux": {"sysctl": {"net/../../../etc/x": "1"}}}),
            "linux.sysctl[\"net/../../../etc/x\"]: \"net/../../../etc/x\" is not a sysctl name \
             (like net.ipv4.ip_forward)",
        ),
        (
            json!({"linux": {"sysctl": {"net.ipv4.ip_forward": 1}}}),
            "linux.sysctl[\"net.ipv4.ip_forward\"]: must be a string, got number 1",
        ),
        // devices
        (
            json!({"linux": {"devices": [{"path": "/dev/x", "type": "x", "major": 1, "minor": 1}]}}),
            "linux.devices[0].type: unknown device type \"x\" (one of: c, b, u, p)",
        ),
        (
            json!({"linux": {"devices": [{"path": "/dev/fuse", "type": "c", "minor": 229}]}}),
            "linux.devices[0].major: is required for a device of type \"c\" (only \"p\" goes without)",
        ),
        (
            json!({"linux": {"devices": [{"path": "dev/fuse", "type": "c", "major": 10, "minor": 229}]}}),
            "linux.devices[0].path: must be an absolute path",
        ),
        (
            json!({"linux": {"devices": [{"path": "/dev/x", "type": "b", "major": 5000, "minor": 0}]}}),
            "linux.devices[0].major: must be between 0 and 4095, got 5000",
        ),
        (
            json!({"linux": {"devices": [{"path": "/dev/x", "type": "c", "major": 1, "minor": 3},
                                         {"path": "/dev/x", "type": "c", "major": 1, "minor": 5}]}}),
            "linux.devices[1].path: duplicate device path /dev/x (also at linux.devices[0])",
        ),
        (
            json!({"linux": {"devices": [{"path": "/dev/x", "type": "c", "major": 1, "minor": 3,
                                          "fileMode": 4095}]}}),
            "linux.devices[0].fileMode: 4095 has permission bits 0o7777; at most 0777 (511)",
        ),
        (
            // S_IFBLK|0660 on a character device.
            json!({"linux": {"devices": [{"path": "/dev/x", "type": "c", "major": 1, "minor": 3,
                                          "fileMode": 25008}]}}),
            "linux.devices[0].fileMode: 25008 has file type bits 0o60000, which are not a c device's (0o20000)",
        ),
        (
            json!({"linux": {"devices": [{"path": "/dev/x", "type": "c", "major": 1, "minor": 3,
                                          "fileMode": -1}]}}),
            "linux.devices[0].fileMode: must be an integer (uint32 file mode, in decimal: 0 to 4294967295), got number -1",
        ),
        // masked / readonly paths, propagation
        (
            json!({"linux": {"maskedPaths": ["/proc/kcore", "proc/keys"]}}),
            "linux.maskedPaths[1]: \"proc/keys\" must be an absolute path",
        ),
        (
            json!({"linux": {"readonlyPaths": ["sys"]}}),
            "linux.readonlyPaths[0]: \"sys\" must be an absolute path",
        ),
        (
            json!({"linux": {"rootfsPropagation": "bogus"}}),
            "linux.rootfsPropagation: unknown rootfs propagation \"bogus\" (shared, slave, private or unbindable)",
        ),
        // resources
        (
            json!({"linux": {"resources": {"memory": {"limit": "x"}}}}),
            "linux.resources.memory.limit: must be an integer (int64: -9223372036854775808 to \
             9223372036854775807), got string \"x\"",
        ),
        (
            json!({"linux": {"resources": {"memory": {"limit": -2}}}}),
            "linux.resources.memory.limit: must be -1 (unlimited) or a byte count of at least 0, got -2",
        ),
        (
            json!({"linux": {"resources": {"memory": {"reservation": -7}}}}),
            "linux.resources.memory.reservation: must be -1 (unlimited) or a byte count of at least 0, got -7",
        ),
        (
            json!({"linux": {"resources": {"memory": {"limit": 200000000, "swap": 100000000}}}}),
            "linux.resources.memory.swap: memory+swap limit 100000000 is below the memory limit \
             200000000 (swap counts memory plus swap)",
        ),
        (
            json!({"linux": {"resources": {"memory": {"swappiness": 101}}}}),
            "linux.resources.memory.swappiness: must be between 0 and 100, got 101",
        ),
        (
            json!({"linux": {"resources": {"cpu": {"shares": 1}}}}),
            "linux.resources.cpu.shares: must be between 2 and 262144, got 1",
        ),
        (
            json!({"linux": {"resources": {"cpu": {"quota": 500}}}}),
            "linux.resources.cpu.quota: must be -1 (no limit) or at least 1000 microseconds, got 500",
        ),
        (
            json!({"linux": {"resources": {"cpu": {"period": 100}}}}),
            "linux.resources.cpu.period: must be between 1000 and 1000000 microseconds, got 100",
        ),
        (
            json!({"linux": {"resources": {"cpu": {"quota": 50000, "burst": 60000}}}}),
            "linux.resources.cpu.burst: 60000 must not exceed quota 50000",
        ),
        (
            json!({"linux": {"resources": {"cpu": {"cpus": "0-"}}}}),
            "linux.resources.cpu.cpus: \"0-\" is not a list like 0-3,7 (bad entry \"0-\")",
        ),
        (
            json!({"linux": {"resources": {"cpu": {"mems": "3-1"}}}}),
            "linux.resources.cpu.mems: \"3-1\": range \"3-1\" runs backwards",
        ),
        (
            json!({"linux": {"resources": {"cpu": {"idle": 2}}}}),
            "linux.resources.cpu.idle: must be 0 or 1, got 2",
        ),
        (
            json!({"linux": {"resources": {"pids": {"limit": -2}}}}),
            "linux.resources.pids.limit: must be -1 (no limit) or a count of at least 0, got -2",
        ),
        (
            json!({"linux": {"resources": {"devices": [{"allow": false, "access": "rwx"}]}}}),
            "linux.resources.devices[0].access: \"rwx\" must be made of r, w and m, each at most once",
        ),
        (
            json!({"linux": {"resources": {"devices": [{"allow": true, "type": "p"}]}}}),
            "linux.resources.devices[0].type: unknown device cgroup type \"p\" (one of: a, c, b)",
        ),
        (
            json!({"linux": {"resources": {"devices": [{"access": "r"}]}}}),
            "linux.resources.devices[0].allow: is required",
        ),
        (
            json!({"linux": {"resources": {"blockIO": {"weightDevice": [{"major": 8, "minor": 0}]}}}}),
            "linux.resources.blockIO.weightDevice[0]: must set weight or leafWeight",
        ),
        (
            json!({"linux": {"resources": {"rdma": {"mlx4_0": {}}}}}),
            "linux.resources.rdma.mlx4_0: must set hcaHandles or hcaObjects",
        ),
        (
            json!({"linux": {"resources": {"unified": {"../memory.max": "1"}}}}),
            "linux.resources.unified[\"../memory.max\"]: must be a cgroup file name like \
             memory.high (CONTROLLER.PARAMETER, no '/')",
        ),
        (
            json!({"linux": {"resources": {"hugepageLimits": [{"pageSize": "2MB"}]}}}),
            "linux.resources.hugepageLimits[0].limit: is required",
        ),
        // seccomp (syntax only)
        (
            json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_MAYBE"}}}),
            "linux.seccomp.defaultAction: unknown seccomp action \"SCMP_ACT_MAYBE\" (one of: \
             SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, \
             SCMP_ACT_ERRNO, SCMP_ACT_TRACE, SCMP_ACT_ALLOW, SCMP_ACT_LOG, SCMP_ACT_NOTIFY)",
        ),
        (
            json!({"linux": {"seccomp": {"architectures": ["SCMP_ARCH_X86_64"]}}}),
            "linux.seccomp.defaultAction: is required",
        ),
        (
            json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
                                         "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}}}),
            "linux.seccomp.syscalls[0].names: must have at least one entry",
        ),
        (
            json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
                                         "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]}}}),
            "linux.seccomp.syscalls[0].errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an \
             errno (action is SCMP_ACT_KILL)",
        ),
        (
            json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"}}}),
            "linux.seccomp.listenerMetadata: must not be set without listenerPath",
        ),
        (
            json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]}}}),
            "linux.seccomp.syscalls[0].args[0].index: syscalls have 6 arguments (0 to 5), got 6",
        ),
        (
            json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_LIKE"}]}]}}}),
            "linux.seccomp.syscalls[0].args[0].op: unknown seccomp operator \"SCMP_CMP_LIKE\" \
             (one of: SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_EQ, SCMP_CMP_GE, \
             SCMP_CMP_GT, SCMP_CMP_MASKED_EQ)",
        ),
        (
            json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_NOTIFY"}}}),
            "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action (the \
             agent's own syscalls would need it)",
        ),
        // hooks
        (
            json!({"hooks": {"prestart": [{"path": "bin/true"}]}}),
            "hooks.prestart[0].path: must be an absolute path",
        ),
        (
            json!({"hooks": {"poststop": [{"path": "/bin/true"}, {"path": "/bin/true", "timeout": 0}]}}),
            "hooks.poststop[1].timeout: must be an integer (int, at least 1: 1 to \
             9223372036854775807), got number 0",
        ),
        (
            json!({"hooks": {"createRuntime": [{"path": "/bin/true", "env": ["X"]}]}}),
            "hooks.createRuntime[0].env[0]: \"X\" is not KEY=VALUE (missing '=')",
        ),
        (json!({"hooks": {"poststart": [{}]}}), "hooks.poststart[0].path: is required"),
        // annotations
        (json!({"annotations": {"": "x"}}), "annotations[\"\"]: key must not be empty"),
        (
            json!({"annotations": {"com.example.n": 2}}),
            "annotations[\"com.example.n\"]: must be a string, got number 2",
        ),
        // the smaller linux objects
        (
            json!({"linux": {"timeOffsets": {"monotonic": {"secs": 1}}}}),
            "linux.timeOffsets: needs a new time namespace (a \"time\" entry without path in \
             linux.namespaces)",
        ),
        (
            json!({"linux": {"namespaces": [{"type": "uts"}, {"type": "time"}],
                             "timeOffsets": {"realtime": {"secs": 1}}}}),
            "linux.timeOffsets.realtime: unknown clock \"realtime\" (monotonic or boottime)",
        ),
        (
            json!({"linux": {"netDevices": {"eth0": {"name": "a/b"}}}}),
            "linux.netDevices.eth0.name: \"a/b\" is not an interface name (1 to 15 bytes, no '/', \
             ':' or spaces)",
        ),
        (
            json!({"linux": {"intelRdt": {"closID": "../x"}}}),
            "linux.intelRdt.closID: \"../x\" must be \"/\" or one directory name",
        ),
        (
            json!({"linux": {"memoryPolicy": {"mode": "MPOL_BIND"}}}),
            "linux.memoryPolicy.nodes: MPOL_BIND needs at least one node",
        ),
        (
            json!({"linux": {"personality": {"domain": "LINUX64"}}}),
            "linux.personality.domain: unknown personality domain \"LINUX64\" (one of: LINUX, LINUX32)",
        ),
        (
            json!({"freebsd": {"jail": {"enforceStatfs": 300}}}),
            "freebsd.jail.enforceStatfs: must be an integer (uint8: 0 to 255), got number 300",
        ),
        (
            json!({"windows": {"layerFolders": "C:\\layers"}}),
            // Sections left to oci-spec's own types: the section and serde's reason.
            "windows: invalid type: string \"C:\\\\layers\", expected a sequence",
        ),
        (
            json!({"zos": {"namespaces": [{"type": "network"}]}}),
            "zos.namespaces[0].type: unknown z/OS namespace type \"network\" (one of: mount, pid, uts, ipc)",
        ),
    ]
}

#[test]
fn every_rule_names_the_path_and_the_reason() {
    let mut failures = Vec::new();
    for (patch, want) in rule_cases() {
        let got = error_of(patch.clone());
        if got != want {
            failures.push(format!("patch {patch}\n  want {want}\n  got  {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Valid values that sit next to the refused ones above: accepted (some of
/// them are unsupported, which is the lifecycle's call, not validation's).
#[test]
fn valid_neighbours_are_accepted() {
    accepted(json!({"ociVersion": "1.3.0"}));
    accepted(json!({"ociVersion": "0.5.0-dev"}));
    accepted(json!({"ociVersion": "1.4.0-rc.1+meta"}));
    accepted(json!({"process": {"user": null}}));
    accepted(json!({"process": {"env": ["A=", "B=x=y"]}}));
    accepted(json!({"process": {"oomScoreAdj": -1000, "rlimits": [
        {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 18446744073709551615u64}]}}));
    accepted(
        json!({"process": {"execCPUAffinity": {"initial": "0, 1", "final": ""},
                                "scheduler": {"policy": "SCHED_OTHER",
                                              "flags": ["SCHED_FLAG_RESET_ON_FORK"]}}}),
    );
    accepted(json!({"process": {"apparmorProfile": "p", "selinuxLabel": "l"}}));
    accepted(json!({"mounts": [{"destination": "tmp", "type": "tmpfs", "source": "tmpfs"}]}));
    accepted(json!({"mounts": [{"destination": "/data", "source": "data", "options": ["rbind"]}]}));
    accepted(json!({"linux": {"rootfsPropagation": "rslave"}}));
    accepted(json!({"linux": {"rootfsPropagation": ""}}));
    accepted(json!({"linux": {"namespaces": [
        {"type": "pid"}, {"type": "network", "path": "/proc/self/ns/net"}, {"type": "ipc"},
        {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}, {"type": "time"},
        {"type": "user"}],
        "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        "timeOffsets": {"monotonic": {"secs": 10, "nanosecs": 5}, "boottime": {"secs": 1}},
        "sysctl": {"kernel.shmmax": "1", "kernel.domainname": "d", "fs.mqueue.msg_max": "10"}}}));
    accepted(json!({"linux": {"sysctl": {"net.ipv4.ip_forward": "1",
                                         "net.ipv4.conf.eth0/100.forwarding": "1"}}}));
    accepted(
        json!({"linux": {"devices": [{"path": "/dev/fifo", "type": "p"},
                                          {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438}]}}),
    );
    // The whole st_mode, as podman sends it (S_IFCHR|0666, S_IFBLK|0660,
    // S_IFIFO|0644): runc takes it and drops the type.
    accepted(
        json!({"linux": {"devices": [{"path": "/dev/null2", "type": "c", "major": 1, "minor": 3, "fileMode": 8630},
                                          {"path": "/dev/loop9", "type": "b", "major": 7, "minor": 9, "fileMode": 25008},
                                          {"path": "/dev/fifo", "type": "p", "fileMode": 4516}]}}),
    );
    accepted(json!({"linux": {"resources": {
        "memory": {"limit": -1, "reservation": 0, "swap": -1, "swappiness": 18446744073709551615u64},
        "cpu": {"shares": 0, "quota": -1, "period": 0, "cpus": "", "mems": "0"},
        "pids": {"limit": 0},
        "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": -1, "minor": -1, "access": "m"}],
        "unified": {"memory.high": "max"}}}}));
    accepted(
        json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64"], "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "listenerPath": "/run/agent.sock", "listenerMetadata": "m",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 5, "value": 1, "valueTwo": 2, "op": "SCMP_CMP_MASKED_EQ"}]}]}}}),
    );
    accepted(json!({"windows": {"layerFolders": ["C:\\layers"]}, "unknownProperty": {"x": 1}}));
    // Not spec properties at the top level: ignored, whatever they hold.
    accepted(json!({"uidMappings": "junk", "gidMappings": 1}));
}

/// Every value the schema tables allow for the enums must also parse in
/// oci-spec (otherwise a valid config would fail with serde's opaque error).
#[test]
fn every_enum_value_parses() {
    let actions = [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_LOG",
    ];
    let archs = [
        "SCMP_ARCH_X86",
        "SCMP_ARCH_X86_64",
        "SCMP_ARCH_X32",
        "SCMP_ARCH_ARM",
        "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_LOONGARCH64",
        "SCMP_ARCH_M68K",
        "SCMP_ARCH_MIPS",
        "SCMP_ARCH_MIPS64",
        "SCMP_ARCH_MIPS64N32",
        "SCMP_ARCH_MIPSEL",
        "SCMP_ARCH_MIPSEL64",
        "SCMP_ARCH_MIPSEL64N32",
        "SCMP_ARCH_PPC",
        "SCMP_ARCH_PPC64",
        "SCMP_ARCH_PPC64LE",
        "SCMP_ARCH_S390",
        "SCMP_ARCH_S390X",
        "SCMP_ARCH_SH",
        "SCMP_ARCH_SHEB",
        "SCMP_ARCH_PARISC",
        "SCMP_ARCH_PARISC64",
        "SCMP_ARCH_RISCV64",
    ];
    let ops = [
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    ];
    let flags = [
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    ];
    let syscalls: Vec<Value> = actions
        .iter()
        .zip(ops.iter().cycle())
        .map(|(a, op)| {
            json!({"names": ["read"], "action": a,
                              "args": [{"index": 0, "value": 0, "op": op}]})
        })
        .chain(ops.iter().map(|op| {
            json!({"names": ["read"], "action": "SCMP_ACT_LOG",
                              "args": [{"index": 1, "value": 0, "op": op}]})
        }))
        .collect();
    let sched_flags = [
        "SCHED_FLAG_RESET_ON_FORK",
        "SCHED_FLAG_RECLAIM",
        "SCHED_FLAG_DL_OVERRUN",
        "SCHED_FLAG_KEEP_POLICY",
        "SCHED_FLAG_KEEP_PARAMS",
        "SCHED_FLAG_UTIL_CLAMP_MIN",
        "SCHED_FLAG_UTIL_CLAMP_MAX",
    ];
    accepted(
        json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
        "architectures": archs, "flags": flags, "syscalls": syscalls}}}),
    );
    for policy in [
        "SCHED_OTHER",
        "SCHED_FIFO",
        "SCHED_RR",
        "SCHED_BATCH",
        "SCHED_ISO",
        "SCHED_IDLE",
        "SCHED_DEADLINE",
    ] {
        accepted(json!({"process": {"scheduler": {"policy": policy, "flags": sched_flags}}}));
    }
    for class in ["IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE"] {
        accepted(json!({"process": {"ioPriority": {"class": class, "priority": 0}}}));
    }
    for (mode, nodes) in [
        ("MPOL_DEFAULT", ""),
        ("MPOL_BIND", "0"),
        ("MPOL_INTERLEAVE", "0-1"),
        ("MPOL_WEIGHTED_INTERLEAVE", "0"),
        ("MPOL_PREFERRED", ""),
        ("MPOL_PREFERRED_MANY", "0"),
        ("MPOL_LOCAL", ""),
    ] {
        accepted(
            json!({"linux": {"memoryPolicy": {"mode": mode, "nodes": nodes,
            "flags": ["MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"]}}}),
        );
    }
    for domain in ["LINUX", "LINUX32"] {
        accepted(json!({"linux": {"personality": {"domain": domain}}}));
    }
    for p in [
        "private",
        "shared",
        "slave",
        "unbindable",
        "rprivate",
        "rshared",
        "rslave",
        "runbindable",
    ] {
        accepted(json!({"linux": {"rootfsPropagation": p}}));
    }
    let rlimits: Vec<Value> = [
        "RLIMIT_AS",
        "RLIMIT_CORE",
        "RLIMIT_CPU",
        "RLIMIT_DATA",
        "RLIMIT_FSIZE",
        "RLIMIT_LOCKS",
        "RLIMIT_MEMLOCK",
        "RLIMIT_MSGQUEUE",
        "RLIMIT_NICE",
        "RLIMIT_NOFILE",
        "RLIMIT_NPROC",
        "RLIMIT_RSS",
        "RLIMIT_RTPRIO",
        "RLIMIT_RTTIME",
        "RLIMIT_SIGPENDING",
        "RLIMIT_STACK",
    ]
    .iter()
    .map(|t| json!({"type": t, "soft": 1, "hard": 2}))
    .collect();
    accepted(json!({"process": {"rlimits": rlimits}}));
}

// ---------------------------------------------------------------- load, exec

#[test]
fn load_refuses_a_config_without_process_as_runc_does() {
    let mut c = config_with(json!({}));
    c.as_object_mut().unwrap().remove("process");
    let b = Bundle::new(&c);
    b.check().unwrap();
    assert_eq!(
        config::load(b.path()).unwrap_err().to_string(),
        "process: is required to create a container (start runs it), and this config has none"
    );
}

#[test]
fn load_returns_the_spec() {
    let b = Bundle::new(&config_with(
        json!({"process": {"args": ["/bin/echo", "hi"]}}),
    ));
    let spec = config::load(b.path()).unwrap();
    let args = spec.process().as_ref().unwrap().args().clone().unwrap();
    assert_eq!(args, ["/bin/echo", "hi"]);
    assert_eq!(
        config::rootfs_path(&spec, b.path()).unwrap(),
        b.path().join("rootfs")
    );
}

#[test]
fn exec_process_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("process.json");
    std::fs::write(&file, r#"{"cwd": "/", "args": ["sh"], "env": ["A=1"]}"#).unwrap();
    let p = config::load_process(&file).unwrap();
    assert_eq!(p.user().uid(), 0);
    std::fs::write(&file, r#"{"cwd": "tmp", "args": ["sh"]}"#).unwrap();
    assert_eq!(
        config::load_process(&file).unwrap_err().to_string(),
        "cwd: must be an absolute path"
    );
    std::fs::write(
        &file,
        r#"{"cwd": "/", "args": ["sh"], "capabilities": {"bounding": ["CAP_X"]}}"#,
    )
    .unwrap();
    assert_eq!(
        config::load_process(&file).unwrap_err().to_string(),
        "capabilities.bounding[0]: unknown capability \"CAP_X\""
    );
    let mut spec = config::default_spec(false);
    let mut p = spec.process_mut().take().unwrap();
    p.set_args(Some(vec![]));
    assert_eq!(
        config::validate_process(&p).unwrap_err().to_string(),
        "process.args: must have at least one entry (the program to run)"
    );
}

// ---------------------------------------------------------------- ipc spec

#[test]
fn default_spec_is_valid_and_round_trips() {
    for rootless in [false, true] {
        let text = config::default_spec_json(rootless);
        let b = Bundle::raw(&text);
        b.check()
            .unwrap_or_else(|e| panic!("rootless={rootless}: {e}"));
        let spec = config::load(b.path()).unwrap();
        // Spec -> JSON -> Spec is the identity.
        let again = config::from_value(serde_json::to_value(&spec).unwrap()).unwrap();
        assert_eq!(again, spec);
        assert_eq!(spec, config::default_spec(rootless));
    }
}

/// Byte for byte what the installed runc writes (runc 1.1 is the reference;
/// scripts/test.sh installs Debian's runc).
#[test]
fn default_spec_matches_the_installed_runc() {
    let runc = ["/usr/sbin/runc", "/usr/bin/runc"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("runc (the reference runtime) is not installed: apt-get install runc");
    for (flag, rootless) in [(None, false), (Some("--rootless"), true)] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = std::process::Command::new(runc);
        cmd.arg("spec").current_dir(dir.path());
        cmd.args(flag);
        let status = cmd.status().unwrap();
        assert!(status.success());
        let theirs = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
        assert_eq!(config::default_spec_json(rootless), theirs, "{flag:?}");
        // And the command itself (`ipc spec` once panicked in clap when a
        // global flag shared spec's --rootless name).
        let ours_dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(asterism_tests::bin("ipc"))
            .arg("spec")
            .args(flag)
            .current_dir(ours_dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "ipc spec {flag:?}: {out:?}");
        // runc's config plus moby's default seccomp profile (spec.rs).
        let ours = std::fs::read_to_string(ours_dir.path().join("config.json")).unwrap();
        let mut ours: Value = serde_json::from_str(&ours).unwrap();
        let seccomp = ours["linux"].as_object_mut().unwrap().remove("seccomp");
        assert!(seccomp.is_some(), "ipc spec {flag:?}: no seccomp profile");
        let theirs: Value = serde_json::from_str(&theirs).unwrap();
        assert_eq!(ours, theirs, "ipc spec {flag:?}");
    }
}

// ---------------------------------------------------------------- features

/// What features.json promises, validation accepts.
#[test]
fn features_are_consistent_with_validation() {
    let f = config::features();
    assert!(f.is_object());
    for v in ["ociVersionMin", "ociVersionMax"] {
        accepted(json!({"ociVersion": f[v]}));
    }
    for ns in f["linux"]["namespaces"].as_array().unwrap() {
        let mut patch = json!({"linux": {"namespaces": [{"type": "uts"}]}});
        if ns != "uts" {
            patch["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": ns}));
        }
        if ns == "user" {
            patch["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 1}]);
            patch["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 1}]);
        }
        accepted(patch);
    }
    let caps = f["linux"]["capabilities"].clone();
    accepted(
        json!({"process": {"capabilities": {"bounding": caps, "effective": caps,
        "inheritable": caps, "permitted": caps, "ambient": caps}}}),
    );
    let mut hooks = serde_json::Map::new();
    for h in f["hooks"].as_array().unwrap() {
        hooks.insert(
            h.as_str().unwrap().into(),
            json!([{"path": "/bin/true", "timeout": 1}]),
        );
    }
    accepted(json!({"hooks": hooks}));
    // (idmap and ridmap need the mount's own mappings here: no user
    // namespace to take them from.)
    let options = f["mountOptions"].clone();
    let map = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    accepted(
        json!({"mounts": [{"destination": "/data", "source": "/srv", "type": "none",
                                "options": options, "uidMappings": map, "gidMappings": map}]}),
    );
    // Every seccomp action and operator it lists passes validation.
    assert_eq!(f["linux"]["seccomp"]["enabled"], true);
    for action in f["linux"]["seccomp"]["actions"].as_array().unwrap() {
        if action != "SCMP_ACT_NOTIFY" {
            accepted(json!({"linux": {"seccomp": {"defaultAction": action}}}));
        }
    }
    for op in f["linux"]["seccomp"]["operators"].as_array().unwrap() {
        accepted(
            json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": op}]}]}}}),
        );
    }
    // What it says is not built is still valid config (the lifecycle says
    // "unsupported", validation does not).
    assert_eq!(f["linux"]["intelRdt"]["enabled"], false);
    accepted(json!({"linux": {"intelRdt": {"closID": "guaranteed_group"}}}));
}
