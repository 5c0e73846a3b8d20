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
        "update --cpu-share 512 --blkio-weight 300 c1",
        "--criu /usr/sbin/criu --rootless auto run --no-subreaper --bundle /b c1",
        "update --cpu-rt-period 1000 --l3-cache-schema L3:0=f c1",
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

/// What the fast parser made of a line, and what clap makes of it, as
/// text to compare (None: refused, or not taken).
fn both(line: &[&str]) -> (Option<String>, Result<String, clap::error::ErrorKind>) {
    let args: Vec<OsString> = std::iter::once("ipc")
        .chain(line.iter().copied())
        .map(OsString::from)
        .collect();
    let show = |g: &super::Globals, c: &super::oci::OciCmd| format!("{g:?} {c:?}");
    let fast = super::fast::parse(&args).map(|cli| match &cli.command {
        super::Command::Oci(c) => show(&cli.globals, c),
        _ => panic!("the fast parser made a non-OCI command"),
    });
    let clap = <OciCli as clap::Parser>::try_parse_from(&args)
        .map(|o| show(&o.globals, &o.command))
        .map_err(|e| e.kind());
    (fast, clap)
}

#[test]
fn the_fast_parser_takes_the_engines_lines_as_clap_does() {
    let taken = [
        "--root /r --log /l --log-format json create --bundle /b --pid-file /p c1",
        "create --bundle /b --console-socket /s --preserve-fds 2 --no-pivot --no-new-keyring c1",
        "create -b /b c1 --root=/r",
        "--root=/r --log=/l --log-format=json start c1",
        "state c1",
        "kill c1 9",
        "kill --all c1 KILL",
        "kill -a c1",
        "delete --force c1",
        "delete -f c1 --debug --systemd-cgroup",
        "--debug run --detach --bundle /b c1",
        "run -b /b -d --keep c1",
        "run --bundle=/b c1",
        // A global flag again: the last wins (dockerd's runtimeArgs script
        // passes its --root before the shim's).
        "--root /a --root /b --log /l --log-format json create --bundle /b c1",
        "--root /a state c1 --root=/b",
        "--debug --debug --log /x --log /y --log-format text --log-format json delete c1",
    ];
    for line in taken {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (fast, clap) = both(&words);
        assert!(fast.is_some(), "{line}: not taken");
        assert_eq!(
            fast.as_ref().ok_or(()),
            clap.as_ref().map_err(|_| ()),
            "{line}"
        );
    }
    let left_to_clap = [
        "run --help",
        "-h",
        "--version",
        "state",
        "state a b",
        "kill a 9 x",
        "delete --force --force a",
        "create --bundle c1",
        "create --bundle= c1",
        "create -b=/b c1",
        "create -b/b c1",
        "create --preserve-fds +2 c1",
        "create --preserve-fds x c1",
        "kill -9 c1",
        "run -dk c1",
        "state -- c1",
        "delete --all c1",
        "kill --force c1",
        "exec c1 true",
        "list",
        "memory-controller list",
    ];
    for line in left_to_clap {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(both(&words).0, None, "{line}: taken");
    }
}

/// Random lines from the words these commands use, right and wrong: every
/// line the fast parser takes, clap takes too, with the same values.
#[test]
fn the_fast_parser_agrees_with_clap_on_random_lines() {
    let words = [
        "create",
        "run",
        "start",
        "state",
        "kill",
        "delete",
        "list",
        "--root",
        "--root=/r",
        "/r",
        "--log",
        "/l",
        "--log-format",
        "json",
        "--debug",
        "--systemd-cgroup",
        "--bundle",
        "-b",
        "/b",
        "--console-socket",
        "/s",
        "--pid-file",
        "/p",
        "--preserve-fds",
        "3",
        "--no-pivot",
        "--no-new-keyring",
        "-d",
        "--detach",
        "--keep",
        "-a",
        "--all",
        "-f",
        "--force",
        "c1",
        "c2",
        "9",
        "KILL",
        "--",
        "-",
        "--bogus",
        "",
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let (mut taken, mut tried) = (0, 0);
    for _ in 0..6_000 {
        let len = 1 + next(7);
        let mut line: Vec<&str> = (0..len).map(|_| words[next(words.len())]).collect();
        // Most lines start with a command word, as engines write them.
        if next(2) == 0 {
            line.insert(next(2), words[next(6)]);
        }
        tried += 1;
        let (fast, clap) = both(&line);
        if let Some(f) = fast {
            taken += 1;
            assert_eq!(Ok(f), clap, "{line:?}");
        }
    }
    assert!(taken > tried / 50, "only {taken} of {tried} lines taken");
}

/// runc's update spells the shares --cpu-share; --cpu-shares stays too.
#[test]
fn update_takes_runcs_flag_spellings() {
    for flag in ["--cpu-share", "--cpu-shares"] {
        let line = format!("update {flag} 512 --blkio-weight 300 c1");
        let o = <OciCli as clap::Parser>::try_parse_from(argv(&line)).expect(&line);
        let super::oci::OciCmd::Update(a) = o.command else {
            panic!("{line}: not an update")
        };
        assert_eq!(a.cpu_shares, Some(512), "{line}");
        assert_eq!(a.blkio_weight, Some(300), "{line}");
    }
}

/// runc's --rootless: asterism runs as root, so only `true` is refused,
/// and a value that is none of runc's is named.
#[test]
fn rootless_true_is_refused_and_auto_is_not() {
    let run = |line: &str| {
        let cli = <Cli as clap::Parser>::try_parse_from(argv(line)).expect(line);
        super::run(cli)
    };
    let e = run("--rootless true state c1").unwrap_err().to_string();
    assert!(e.contains("--rootless true: unsupported"), "{e}");
    let e = run("--rootless maybe state c1").unwrap_err().to_string();
    assert!(e.contains("must be true, false or auto"), "{e}");
}

/// Every OCI command line of the CLI reference converts into its
/// arguments (clap checks the types only then: a global flag whose name a
/// subcommand also uses, as `spec --rootless`, panicked there).
#[test]
fn every_command_line_converts_into_its_arguments() {
    for line in [
        "--rootless auto --criu /c spec --rootless",
        "spec --rootless --bundle /b",
        "--rootless false state c1",
        "create --bundle /b c1",
        "run --no-subreaper -d -b /b c1",
        "exec --ignore-paused --apparmor p --process-label l --cgroup x c1 true",
        "update --cpu-share 2 --blkio-weight 10 --cpu-rt-period 1 c1",
        "events --stats c1",
        "list -q",
        "ps c1",
        "features",
    ] {
        <Cli as clap::Parser>::try_parse_from(argv(line)).expect(line);
        <OciCli as clap::Parser>::try_parse_from(argv(line)).expect(line);
    }
}

/// No command has an argument of its own named as a global one: clap
/// merges the two and panics when it converts them (`spec --rootless`
/// did, with a global `--rootless VALUE`).
#[test]
fn no_command_reuses_a_global_arguments_name() {
    fn walk(cmd: &clap::Command, globals: &[String], path: &str) {
        for sub in cmd.get_subcommands() {
            let here = format!("{path} {}", sub.get_name());
            for arg in sub.get_arguments() {
                let id = arg.get_id().as_str().to_string();
                assert!(
                    arg.is_global_set() || !globals.contains(&id),
                    "`{here}` has an argument `{id}` named as a global one"
                );
            }
            walk(sub, globals, &here);
        }
    }
    for cmd in [Cli::command(), OciCli::command()] {
        let globals: Vec<String> = cmd
            .get_arguments()
            .filter(|a| a.is_global_set())
            .map(|a| a.get_id().as_str().to_string())
            .collect();
        assert!(globals.contains(&"root".to_string()), "{globals:?}");
        walk(&cmd, &globals, "ipc");
    }
}
