//! The smaller OCI-only command tree accepts and refuses exactly what the
//! whole tree does, with the same values.

use super::{command_word, Cli, OciCli};
use clap::CommandFactory;
use std::ffi::OsString;
use std::path::PathBuf;

fn argv(line: &str) -> Vec<OsString> {
    std::iter::once("ipc")
        .chain(line.split_whitespace())
        .map(OsString::from)
        .collect()
}

#[test]
fn the_command_word_skips_global_flags_and_their_values() {
    let w = |line: &str| command_word(&argv(line)).map(str::to_string);
    assert_eq!(w("state a"), Some("state".into()));
    assert_eq!(
        w("--root /r --log /l --log-format json kill a 9"),
        Some("kill".into())
    );
    assert_eq!(
        w("--root=/r --debug delete --force a"),
        Some("delete".into())
    );
    assert_eq!(w("--systemd-cgroup run a"), Some("run".into()));
    assert_eq!(
        w("--root /r memory-controller list"),
        Some("memory-controller".into())
    );
    assert_eq!(w("--root /r"), None);
}

#[test]
fn oci_command_lines_parse_the_same_with_both_trees() {
    let lines = [
        "--root /r --log /l --log-format json create --bundle /b --pid-file /p c1",
        "create --bundle /b --console-socket /s --preserve-fds 2 --no-pivot --no-new-keyring c1",
        "--root /r start c1",
        "state c1",
        "kill c1 9",
        "kill --all c1 KILL",
        "delete --force c1",
        "--debug run --detach --bundle /b c1",
        "run -b /b c1",
        "exec --process /p.json --detach --pid-file /x c1",
        "exec -t --cwd /tmp --env A=1 --user 1:2 c1 sh -c true",
        "list --format json",
        "list -q",
        "ps --format json c1",
        "events --stats c1",
        "update --memory 64M --pids-limit 10 c1",
        "pause c1",
        "resume c1",
        "features",
        "spec",
        "--root /r --systemd-cgroup state c1",
        // refused by both
        "state",
        "kill",
        "create --bogus c1",
        "delete --force",
        "run --bundle",
    ];
    for line in lines {
        let full = Cli::command().try_get_matches_from(argv(line));
        let small = OciCli::command().try_get_matches_from(argv(line));
        match (&full, &small) {
            (Ok(f), Ok(s)) => {
                assert_eq!(f.subcommand(), s.subcommand(), "{line}");
                for flag in ["root", "log", "log_format"] {
                    assert_eq!(
                        f.get_raw(flag).map(|v| v.collect::<Vec<_>>()),
                        s.get_raw(flag).map(|v| v.collect::<Vec<_>>()),
                        "{line}: --{flag}"
                    );
                }
                for flag in ["debug", "systemd_cgroup"] {
                    assert_eq!(f.get_flag(flag), s.get_flag(flag), "{line}: --{flag}");
                }
            }
            (Err(f), Err(s)) => assert_eq!(f.kind(), s.kind(), "{line}"),
            _ => panic!(
                "{line}: the whole tree says {:?}, the OCI tree {:?}",
                full.as_ref().map(|_| "ok").map_err(|e| e.kind()),
                small.as_ref().map(|_| "ok").map_err(|e| e.kind())
            ),
        }
    }
}

#[test]
fn a_parsed_oci_line_keeps_its_globals() {
    let o = <OciCli as clap::Parser>::try_parse_from(argv("--root /r --log-format json state c1"))
        .unwrap();
    assert_eq!(o.globals.root, PathBuf::from("/r"));
    assert_eq!(o.globals.log_format, "json");
    assert!(matches!(o.command, super::oci::OciCmd::State { .. }));
}
