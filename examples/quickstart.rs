//! The quick start: a pool of four workers resizes a batch of images, one fails, and the
//! results come back in the order the jobs finish.
//!
//! Run with `cargo run --example quickstart`.

use std::time::Duration;

use brigade::prelude::*;

/// One image to resize.
struct Resize {
    name: String,
    width: u32,
}

impl Job for Resize {
    type Output = String;
    type Error = String;

    fn run(&mut self, cx: &JobContext) -> Result<String, String> {
        if self.width > 4000 {
            return Err(format!("{} is too large: max width is 4000px", self.name));
        }
        // Resizing takes a while; a cancelled job stops waiting at once.
        if cx
            .token()
            .wait_timeout(Duration::from_millis(u64::from(self.width / 40)))
        {
            return Err(format!("{} was cancelled", self.name));
        }
        Ok(format!("{} resized to {}px", self.name, self.width / 2))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = ThreadPool::builder()
        .name("images")
        .workers(4)
        .queue_capacity(16)
        .build()?;

    let widths = [800, 1200, 1920, 640, 5000, 2560, 3840, 1024];
    let jobs = widths.iter().enumerate().map(|(i, &width)| Resize {
        name: format!("img{:03}", i + 1),
        width,
    });

    // At most 8 jobs in flight; results in completion order. Each message names its
    // image, so the output says which job it was.
    for result in pool.map_unordered(jobs, 8) {
        match result {
            Ok(message) => println!("{message}"),
            Err(MapError::Job(error)) => println!("FAILED: {error}"),
            // The pool hands back a job it refuses (here it never does: nothing rejects
            // and the pool is open).
            Err(MapError::Refused(refused)) => {
                let reason = refused.to_string();
                println!("{}: not accepted: {reason}", refused.into_inner().name);
            }
        }
    }

    let stats = pool.stats();
    println!(
        "\n{} submitted, {} completed, {} failed",
        stats.submitted, stats.completed, stats.failed
    );
    pool.shutdown();
    Ok(())
}
