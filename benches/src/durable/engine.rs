//! The storage engines the durable bench runs on, each with brigade's store and apalis's
//! backend side by side.

/// A storage engine, with the server settings that bear on its numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// One PostgreSQL server, a fresh database per row.
    Postgres,
    /// A throwaway `redis-server` with AOF `appendfsync always`: every write on disk before
    /// the server answers.
    Redis,
    /// The same server with `appendfsync everysec`, the common production setting: a
    /// machine crash can lose about the last second of writes.
    RedisEverysec,
    /// One SQLite file per row in WAL mode, shared by every process, `synchronous = FULL`.
    Sqlite,
}

impl Engine {
    /// Every engine, in report order.
    pub const ALL: [Engine; 4] = [
        Engine::Postgres,
        Engine::Redis,
        Engine::RedisEverysec,
        Engine::Sqlite,
    ];

    /// The engine's name in reports and on the worker command line.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_benches::durable::Engine;
    ///
    /// assert_eq!(Engine::from_name("redis-everysec"), Some(Engine::RedisEverysec));
    /// assert_eq!(Engine::Sqlite.name(), "sqlite");
    /// ```
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Redis => "redis",
            Engine::RedisEverysec => "redis-everysec",
            Engine::Sqlite => "sqlite",
        }
    }

    /// The engine called `name`, if any.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|engine| engine.name() == name)
    }

    /// The engines a selection on the command line names: `postgres`, `redis` (both
    /// persistence settings) or `sqlite`.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_benches::durable::Engine;
    ///
    /// assert_eq!(Engine::selected("redis"), vec![Engine::Redis, Engine::RedisEverysec]);
    /// assert!(Engine::selected("mysql").is_empty());
    /// ```
    #[must_use]
    pub fn selected(name: &str) -> Vec<Engine> {
        match name {
            "redis" => vec![Engine::Redis, Engine::RedisEverysec],
            _ => Self::from_name(name).into_iter().collect(),
        }
    }

    /// Worker process counts of the throughput workload. SQLite serializes every write on
    /// one file lock, so more than two processes on two cores only queue on it.
    #[must_use]
    pub fn processes(self) -> &'static [usize] {
        match self {
            Engine::Sqlite => &[1, 2],
            _ => &[1, 2, 4],
        }
    }

    /// The most jobs one throughput row may enqueue up front on this engine.
    ///
    /// apalis-redis 1.0.0 gives every pushed job a run-at of now, so each waits in its
    /// scheduled set, and its fetch script promotes every due job with one Lua `unpack`,
    /// which fails past Lua's stack limit (about 8,000 values: "too many results to
    /// unpack"). Both Redis sides therefore drain 7,500 jobs per row.
    #[must_use]
    pub fn max_backlog(self) -> u64 {
        match self {
            Engine::Redis | Engine::RedisEverysec => 7_500,
            Engine::Postgres | Engine::Sqlite => u64::MAX,
        }
    }

    /// Whether the pickup-latency workload runs: the second Redis persistence setting
    /// shows what durability costs in throughput; a wake-up does not wait on the disk.
    #[must_use]
    pub fn measures_latency(self) -> bool {
        self != Engine::RedisEverysec
    }

    /// Whether brigade runs once more on a store already holding finished rows: the
    /// claim-with-history question belongs to PostgreSQL's table and indexes.
    #[must_use]
    pub fn measures_history(self) -> bool {
        self == Engine::Postgres
    }

    /// The Redis `appendfsync` setting of the engine, if it runs on Redis.
    pub(crate) fn appendfsync(self) -> Option<&'static str> {
        match self {
            Engine::Redis => Some("always"),
            Engine::RedisEverysec => Some("everysec"),
            Engine::Postgres | Engine::Sqlite => None,
        }
    }
}
