//! The command line: one binary, four roles.

use std::path::PathBuf;
use std::str::FromStr;

use crate::store_kind::{Fsync, StoreKind};

pub(crate) const USAGE: &str = "\
usage: brigade-chaos run [--store postgres|redis|sqlite] [--redis-fsync always|everysec]
                         [--quick] [--cycles N] [--seed S] [--workers 3|4] [--out DIR]
                         [--allow-no-netns]
       brigade-chaos check --ledger-dir DIR
       brigade-chaos worker --url URL --ledger FILE --id N [--run K]
       brigade-chaos producer --url URL --ledger FILE --jobs N [--poison P] [--always-failing F]
                              [--seconds S] [--seed S] [--hold-ms MS] [--long-every-ms MS]
                              [--resume]

run        the fault harness (as root: network namespaces)
  --store    the store under faults (default postgres); URLs say which to the others
  --redis-fsync  Redis's appendfsync (default always; everysec reports lost jobs instead
             of failing on them: a crash may lose a second of acknowledged writes)
  --quick    a few cycles of each fault and a few hundred jobs (CI)
  --cycles N cycles of each fault kind (default 20, quick 3)
  --seed S   replay the fault schedule and workload of an earlier run
  --workers  worker processes (default 4)
  --out DIR  where the ledgers go (default target/brigade-chaos); the run's are in DIR/seed-S
  --allow-no-netns  accept a run on 127.0.0.1 where namespaces cannot be made (not root,
             no `ip`): PostgreSQL and Redis then play no link down, and without this flag
             such a run is refused (SQLite has no network and needs none)
check      audit the ledgers and the jobs table a run left in DIR
worker     one worker process (started by run)
producer   the producer process (started by run); --always-failing F enqueues F jobs that
           fail every run (max_attempts 3), --hold-ms keeps each transaction open that
           long before its commit, --long-every-ms adds a job past the lease about that
           often (0, the default: none), --resume continues after the ledger's jobs; SIGUSR1
           asks it for a transaction, SIGHUP for a job past the workers' grace, SIGUSR2
           for that job and a burst after it";

/// What to do.
#[derive(Debug)]
pub(crate) enum Command {
    Help,
    Run(RunOptions),
    Check { ledger_dir: PathBuf },
    Worker(WorkerOptions),
    Producer(ProducerOptions),
}

/// `run`'s options.
#[derive(Clone, Debug)]
pub(crate) struct RunOptions {
    pub(crate) store: StoreKind,
    pub(crate) fsync: Fsync,
    pub(crate) quick: bool,
    pub(crate) cycles: Option<u32>,
    pub(crate) seed: Option<u64>,
    pub(crate) workers: usize,
    pub(crate) out: PathBuf,
    /// Run on loopback, without the link-down fault, where namespaces cannot be made.
    pub(crate) allow_no_netns: bool,
}

/// `worker`'s options.
#[derive(Clone, Debug)]
pub(crate) struct WorkerOptions {
    pub(crate) url: String,
    pub(crate) ledger: PathBuf,
    /// Which worker host (1-based).
    pub(crate) id: u32,
    /// Which incarnation of that worker (a restart after a crash is the next one).
    pub(crate) run: u32,
}

/// `producer`'s options.
#[derive(Clone, Debug)]
pub(crate) struct ProducerOptions {
    pub(crate) url: String,
    pub(crate) ledger: PathBuf,
    pub(crate) jobs: u64,
    pub(crate) poison: u32,
    /// Jobs that fail every run, enqueued alone with `max_attempts` 3.
    pub(crate) always_failing: u32,
    /// Spread the jobs over about this long.
    pub(crate) seconds: f64,
    pub(crate) seed: u64,
    /// Milliseconds each transaction stays open, written, before its commit: a window
    /// for the orchestrator to kill the producer inside it.
    pub(crate) hold_ms: u64,
    /// About how often a long job (past the lease) goes out, in milliseconds; 0 for none.
    pub(crate) long_every_ms: u64,
    /// Continue after the jobs the ledger already names (a restart after a kill).
    pub(crate) resume: bool,
}

impl Command {
    /// Parses the arguments after the program name.
    pub(crate) fn parse(args: &[String]) -> Result<Self, String> {
        let Some((role, rest)) = args.split_first() else {
            return Ok(Command::Help);
        };
        let mut flags = Flags::new(rest)?;
        let command = match role.as_str() {
            "-h" | "--help" | "help" => Command::Help,
            "run" => {
                let store = flags.optional("--store")?.unwrap_or(StoreKind::Postgres);
                // Refused whenever it is given without Redis, its default value included: a
                // flag that would be ignored is a mistake worth saying before a long run.
                let fsync: Option<Fsync> = flags.optional("--redis-fsync")?;
                if fsync.is_some() && store != StoreKind::Redis {
                    return Err("--redis-fsync is for --store redis".to_owned());
                }
                Command::Run(RunOptions {
                    store,
                    fsync: fsync.unwrap_or(Fsync::Always),
                    quick: flags.switch("--quick")?,
                    cycles: flags.optional("--cycles")?,
                    seed: flags.optional("--seed")?,
                    workers: flags.optional("--workers")?.unwrap_or(4),
                    out: flags
                        .optional::<String>("--out")?
                        .map_or_else(|| PathBuf::from("target/brigade-chaos"), PathBuf::from),
                    allow_no_netns: flags.switch("--allow-no-netns")?,
                })
            }
            "check" => Command::Check {
                ledger_dir: PathBuf::from(flags.required::<String>("--ledger-dir")?),
            },
            "worker" => Command::Worker(WorkerOptions {
                url: flags.required("--url")?,
                ledger: PathBuf::from(flags.required::<String>("--ledger")?),
                id: flags.required("--id")?,
                run: flags.optional("--run")?.unwrap_or(1),
            }),
            "producer" => Command::Producer(ProducerOptions {
                url: flags.required("--url")?,
                ledger: PathBuf::from(flags.required::<String>("--ledger")?),
                jobs: flags.required("--jobs")?,
                poison: flags.optional("--poison")?.unwrap_or(0),
                always_failing: flags.optional("--always-failing")?.unwrap_or(0),
                seconds: flags.optional("--seconds")?.unwrap_or(10.0),
                seed: flags.optional("--seed")?.unwrap_or(1),
                hold_ms: flags.optional("--hold-ms")?.unwrap_or(0),
                long_every_ms: flags.optional("--long-every-ms")?.unwrap_or(0),
                resume: flags.switch("--resume")?,
            }),
            other => return Err(format!("unknown command `{other}`")),
        };
        flags.finish()?;
        if let Command::Run(options) = &command {
            if !(3..=4).contains(&options.workers) {
                return Err("--workers takes 3 or 4".to_owned());
            }
        }
        Ok(command)
    }
}

/// `--name value` pairs and bare `--switch`es, each taken once.
struct Flags {
    pairs: Vec<(String, Option<String>)>,
}

impl Flags {
    fn new(args: &[String]) -> Result<Self, String> {
        let mut pairs = Vec::new();
        let mut args = args.iter().peekable();
        while let Some(arg) = args.next() {
            if !arg.starts_with("--") {
                return Err(format!("unexpected argument `{arg}`"));
            }
            let value = args.next_if(|next| !next.starts_with("--")).cloned();
            pairs.push((arg.clone(), value));
        }
        Ok(Self { pairs })
    }

    fn take(&mut self, name: &str) -> Option<Option<String>> {
        let at = self.pairs.iter().position(|(flag, _)| flag == name)?;
        Some(self.pairs.remove(at).1)
    }

    fn switch(&mut self, name: &str) -> Result<bool, String> {
        match self.take(name) {
            None => Ok(false),
            Some(None) => Ok(true),
            Some(Some(value)) => Err(format!("{name} takes no value, not `{value}`")),
        }
    }

    fn optional<T: FromStr>(&mut self, name: &str) -> Result<Option<T>, String> {
        match self.take(name) {
            None => Ok(None),
            Some(None) => Err(format!("{name} needs a value")),
            Some(Some(value)) => value
                .parse()
                .map(Some)
                .map_err(|_| format!("{name}: cannot read `{value}`")),
        }
    }

    fn required<T: FromStr>(&mut self, name: &str) -> Result<T, String> {
        self.optional(name)?
            .ok_or_else(|| format!("{name} is required"))
    }

    fn finish(self) -> Result<(), String> {
        match self.pairs.first() {
            None => Ok(()),
            Some((flag, _)) => Err(format!("unknown or repeated flag `{flag}`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command, String> {
        Command::parse(
            &line
                .split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn reads_run_flags_in_any_order() {
        let Ok(Command::Run(options)) = parse("run --seed 7 --quick --cycles 3") else {
            panic!("not a run")
        };
        assert!(options.quick);
        assert!(!options.allow_no_netns);
        assert_eq!(
            (options.seed, options.cycles, options.workers),
            (Some(7), Some(3), 4)
        );
    }

    #[test]
    fn refuses_unknown_flags_and_missing_values() {
        assert!(parse("run --fast").is_err());
        assert!(parse("worker --url").is_err());
        assert!(parse("run --workers 9").is_err());
        assert!(parse("run --store mysql").is_err());
        assert!(parse("run --store sqlite --redis-fsync everysec").is_err());
        assert!(
            parse("run --redis-fsync always").is_err(),
            "refused even at its default value: without Redis it would be ignored"
        );
    }

    #[test]
    fn a_run_without_namespaces_is_asked_for_by_name() {
        let Ok(Command::Run(options)) = parse("run --store redis --allow-no-netns") else {
            panic!("not a run")
        };
        assert!(options.allow_no_netns);
        assert!(parse("run --allow-no-netns yes").is_err());
    }

    #[test]
    fn reads_the_store() {
        let Ok(Command::Run(options)) = parse("run --store redis --redis-fsync everysec") else {
            panic!("not a run")
        };
        assert_eq!(
            (options.store, options.fsync),
            (StoreKind::Redis, Fsync::Everysec)
        );
    }
}
