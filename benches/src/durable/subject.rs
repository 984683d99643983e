//! The two queues under measurement, and what the coordinator asks of each: a producer,
//! and how to read progress from its table.

use super::apalis::ApalisProducer;
use super::brigade::BrigadeProducer;
use super::job::NoopJob;

/// A durable queue on PostgreSQL under measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DurableSubject {
    /// brigade-queue's `Worker` on brigade-postgres's `PgStore`.
    Brigade,
    /// apalis's `Worker` on apalis-postgres's `PostgresStorage`.
    Apalis,
}

impl DurableSubject {
    /// Both subjects, brigade first: the order of the report's columns.
    pub const ALL: [DurableSubject; 2] = [DurableSubject::Brigade, DurableSubject::Apalis];

    /// The subject's name in reports and on the worker command line.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_benches::durable::DurableSubject;
    ///
    /// assert_eq!(DurableSubject::from_name("apalis"), Some(DurableSubject::Apalis));
    /// assert_eq!(DurableSubject::Apalis.name(), "apalis");
    /// ```
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            DurableSubject::Brigade => "brigade",
            DurableSubject::Apalis => "apalis",
        }
    }

    /// The subject called `name`, if any.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|subject| subject.name() == name)
    }

    /// Connects a producer to the database at `url`, creating the subject's tables.
    pub(crate) async fn producer(self, url: &str) -> Result<Producer, String> {
        Ok(match self {
            DurableSubject::Brigade => Producer::Brigade(BrigadeProducer::connect(url).await?),
            DurableSubject::Apalis => Producer::Apalis(ApalisProducer::connect(url).await?),
        })
    }

    /// Counts the jobs not finished yet (the measured queue is alone in its database).
    pub(crate) fn unfinished_sql(self) -> &'static str {
        match self {
            // Two counts, so each reads its partial index (claimable, leased): one count
            // over both states would scan the whole table, a million finished rows and all.
            DurableSubject::Brigade => {
                "SELECT (SELECT count(*) FROM brigade.jobs WHERE queue = 'noop' AND state = 'available')
                      + (SELECT count(*) FROM brigade.jobs WHERE queue = 'noop' AND state = 'running')"
            }
            DurableSubject::Apalis => "SELECT count(*) FROM apalis.jobs WHERE done_at IS NULL",
        }
    }

    /// When the last job's end was recorded, in µs since the epoch (the database's
    /// `now()` at the ack, on this machine's clock). Prefilled rows end a day earlier.
    pub(crate) fn last_finish_sql(self) -> &'static str {
        match self {
            DurableSubject::Brigade => {
                "SELECT (extract(epoch FROM max(finished_at)) * 1e6)::float8 FROM brigade.jobs"
            }
            DurableSubject::Apalis => {
                "SELECT (extract(epoch FROM max(done_at)) * 1e6)::float8 FROM apalis.jobs"
            }
        }
    }
}

/// A connected producer of either subject.
#[derive(Debug)]
pub(crate) enum Producer {
    Brigade(BrigadeProducer),
    Apalis(ApalisProducer),
}

impl Producer {
    /// Enqueues `jobs` in one call.
    pub(crate) async fn enqueue_batch(&mut self, jobs: Vec<NoopJob>) -> Result<(), String> {
        match self {
            Producer::Brigade(producer) => producer.enqueue_batch(jobs).await,
            Producer::Apalis(producer) => producer.enqueue_batch(jobs).await,
        }
    }

    /// Enqueues one job.
    pub(crate) async fn enqueue(&mut self, job: NoopJob) -> Result<(), String> {
        match self {
            Producer::Brigade(producer) => producer.enqueue(job).await,
            Producer::Apalis(producer) => producer.enqueue(job).await,
        }
    }
}
