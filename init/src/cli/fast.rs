//! The command lines an engine runs for every container (create, start,
//! state, kill, delete, and run), in their plain forms, parsed without
//! clap. Building and walking even a one-command clap tree took ~0.3 ms
//! of every `ipc` start; a container's lifecycle under containerd or
//! podman execs ipc five times.
//!
//! Strict on purpose: it returns None for anything it does not know for
//! certain (--help and --version, an unknown flag or a command's flag given
//! twice (a global one may come again: the last wins), `--`, a
//! value that starts with `-`, an empty value, short flags run together,
//! a missing or an extra argument, text that is not UTF-8), and clap then
//! parses or refuses the line as always. The tests check that every line
//! it accepts gives what clap gives.

use super::oci::{CreateArgs, OciCmd, RunArgs};
use super::{flag_parts, Cli, Command, Globals};
use std::ffi::OsString;
use std::path::PathBuf;

/// The parsed line, or None: let clap have it.
pub fn parse(args: &[OsString]) -> Option<Cli> {
    let words: Vec<&str> = args
        .iter()
        .skip(1)
        .map(|a| a.to_str())
        .collect::<Option<_>>()?;
    let mut line = Line::default();
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        if line.global(w, &mut it)? {
            continue;
        }
        match line.command {
            None if !w.starts_with('-') => line.command = Some(Word::of(w)?),
            None => return None,
            Some(cmd) => line.command_arg(cmd, w, &mut it)?,
        }
    }
    line.finish()
}

/// The commands this parser knows.
#[derive(Clone, Copy, PartialEq)]
enum Word {
    Create,
    Run,
    Start,
    State,
    Kill,
    Delete,
}

impl Word {
    fn of(w: &str) -> Option<Word> {
        Some(match w {
            "create" => Word::Create,
            "run" => Word::Run,
            "start" => Word::Start,
            "state" => Word::State,
            "kill" => Word::Kill,
            "delete" => Word::Delete,
            _ => return None,
        })
    }
}

/// What the line said so far.
#[derive(Default)]
struct Line<'a> {
    root: Option<&'a str>,
    log: Option<&'a str>,
    log_format: Option<&'a str>,
    debug: bool,
    systemd_cgroup: bool,
    command: Option<Word>,
    positionals: Vec<&'a str>,
    bundle: Option<&'a str>,
    console_socket: Option<&'a str>,
    pid_file: Option<&'a str>,
    preserve_fds: Option<&'a str>,
    no_pivot: bool,
    no_new_keyring: bool,
    detach: bool,
    keep: bool,
    all: bool,
    force: bool,
}

/// Sets a flag once; a second time is clap's to judge.
fn flag(slot: &mut bool) -> Option<bool> {
    if std::mem::replace(slot, true) {
        return None;
    }
    Some(true)
}

/// An option's value, from `--name=value` or the next word; once only.
fn value<'a>(
    slot: &mut Option<&'a str>,
    inline: Option<&'a str>,
    it: &mut impl Iterator<Item = &'a str>,
) -> Option<bool> {
    if slot.is_some() {
        return None;
    }
    last_value(slot, inline, it)
}

/// As `value`, but a second one replaces the first (a global flag's).
fn last_value<'a>(
    slot: &mut Option<&'a str>,
    inline: Option<&'a str>,
    it: &mut impl Iterator<Item = &'a str>,
) -> Option<bool> {
    let v = match inline {
        Some(v) => v,
        None => it.next()?,
    };
    if v.is_empty() || v.starts_with('-') {
        return None;
    }
    *slot = Some(v);
    Some(true)
}

impl<'a> Line<'a> {
    /// A global flag (anywhere on the line, as clap's `global = true`):
    /// Some(true) when `w` was one, Some(false) when not, None: give up.
    fn global(&mut self, w: &'a str, it: &mut impl Iterator<Item = &'a str>) -> Option<bool> {
        let (name, inline) = flag_parts(w);
        // A global flag may come again, the last one winning (as clap's
        // overrides_with and runc have it; dockerd's runtimeArgs come
        // before the shim's own --root).
        match (name, inline) {
            ("--root", _) => last_value(&mut self.root, inline, it),
            ("--log", _) => last_value(&mut self.log, inline, it),
            ("--log-format", _) => last_value(&mut self.log_format, inline, it),
            ("--debug", None) => {
                self.debug = true;
                Some(true)
            }
            ("--systemd-cgroup", None) => {
                self.systemd_cgroup = true;
                Some(true)
            }
            _ => Some(false),
        }
    }

    /// A flag or an argument of `cmd`.
    fn command_arg(
        &mut self,
        cmd: Word,
        w: &'a str,
        it: &mut impl Iterator<Item = &'a str>,
    ) -> Option<()> {
        if !w.starts_with('-') {
            self.positionals.push(w);
            return Some(());
        }
        let (name, inline) = flag_parts(w);
        let creates = matches!(cmd, Word::Create | Word::Run);
        let done = match (cmd, name, inline) {
            (_, "--bundle", _) | (_, "-b", None) if creates => value(&mut self.bundle, inline, it),
            (_, "--console-socket", _) if creates => value(&mut self.console_socket, inline, it),
            (_, "--pid-file", _) if creates => value(&mut self.pid_file, inline, it),
            (_, "--preserve-fds", _) if creates => value(&mut self.preserve_fds, inline, it),
            (_, "--no-pivot", None) if creates => flag(&mut self.no_pivot),
            (_, "--no-new-keyring", None) if creates => flag(&mut self.no_new_keyring),
            (Word::Run, "--detach" | "-d", None) => flag(&mut self.detach),
            (Word::Run, "--keep", None) => flag(&mut self.keep),
            (Word::Kill, "--all" | "-a", None) => flag(&mut self.all),
            (Word::Delete, "--force" | "-f", None) => flag(&mut self.force),
            _ => None,
        };
        done.map(|_| ())
    }

    fn finish(self) -> Option<Cli> {
        let cmd = self.command?;
        let one_id = |p: &[&str]| match p {
            [id] => Some(id.to_string()),
            _ => None,
        };
        let command = match cmd {
            Word::Create => OciCmd::Create(self.create_args()?),
            Word::Run => OciCmd::Run(RunArgs {
                create: self.create_args()?,
                detach: self.detach,
                keep: self.keep,
                no_subreaper: false,
            }),
            Word::Start => OciCmd::Start {
                id: one_id(&self.positionals)?,
            },
            Word::State => OciCmd::State {
                id: one_id(&self.positionals)?,
            },
            Word::Kill => match self.positionals[..] {
                [id] => OciCmd::Kill {
                    id: id.into(),
                    signal: None,
                    all: self.all,
                },
                [id, signal] => OciCmd::Kill {
                    id: id.into(),
                    signal: Some(signal.into()),
                    all: self.all,
                },
                _ => return None,
            },
            Word::Delete => OciCmd::Delete {
                id: one_id(&self.positionals)?,
                force: self.force,
            },
        };
        let globals = Globals {
            root: PathBuf::from(self.root.unwrap_or(libipc::DEFAULT_ROOT)),
            log: self.log.map(PathBuf::from),
            log_format: self.log_format.unwrap_or("text").to_string(),
            debug: self.debug,
            systemd_cgroup: self.systemd_cgroup,
            criu: None,
            rootless: None,
        };
        Some(Cli {
            globals,
            command: Command::Oci(command),
        })
    }

    fn create_args(&self) -> Option<CreateArgs> {
        let [id] = self.positionals[..] else {
            return None;
        };
        let preserve_fds = match self.preserve_fds {
            // Digits only: what clap's u32 parser accepts besides ("+3")
            // is left to it.
            Some(n) if n.bytes().all(|b| b.is_ascii_digit()) => n.parse().ok()?,
            Some(_) => return None,
            None => 0,
        };
        Some(CreateArgs {
            id: id.to_string(),
            bundle: self.bundle.map(PathBuf::from),
            console_socket: self.console_socket.map(PathBuf::from),
            pid_file: self.pid_file.map(PathBuf::from),
            preserve_fds,
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
        })
    }
}
