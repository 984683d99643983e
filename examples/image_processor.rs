//! An image-processing service: 3 workers, a queue of 100, results collected while the
//! jobs run, a graceful shutdown, then a forced one that hands back what never started.
//!
//! Ported from "Real World Example 1: Image Processing Service" (`image_processor.go`).
//! Run with `cargo run --example image_processor`.

use std::thread;
use std::time::{Duration, Instant};

use brigade::Completions;
use brigade::prelude::*;

/// An image to resize.
struct ImageJob {
    image_id: String,
    width: u32,
    height: u32,
}

/// The processed image.
struct ImageResult {
    image_id: String,
    output_url: String,
    original_size: u64,
    new_size: u64,
    duration: Duration,
}

impl ImageJob {
    fn new(image_id: &str, width: u32, height: u32) -> Self {
        ImageJob {
            image_id: image_id.to_owned(),
            width,
            height,
        }
    }
}

impl Job for ImageJob {
    type Output = ImageResult;
    type Error = String;

    fn run(&mut self, cx: &JobContext) -> Result<ImageResult, String> {
        let start = Instant::now();
        // Download, decode, resize, encode: each step gives way to a forced shutdown.
        for step in [50, 30, 100, 40] {
            if cx.token().wait_timeout(Duration::from_millis(step)) {
                return Err(format!("image {}: cancelled mid-processing", self.image_id));
            }
        }
        if self.width > 4000 {
            return Err(format!(
                "Image {} - image too large: max width is 4000px",
                self.image_id
            ));
        }
        Ok(ImageResult {
            image_id: self.image_id.clone(),
            output_url: format!(
                "https://cdn.example.com/processed/{}_{}x{}.jpg",
                self.image_id, self.width, self.height
            ),
            original_size: 2_500_000,
            new_size: u64::from(self.width) * u64::from(self.height) * 3 / 10,
            duration: start.elapsed(),
        })
    }
}

fn images() -> Vec<ImageJob> {
    vec![
        ImageJob::new("img001", 800, 600),
        ImageJob::new("img002", 1200, 800),
        ImageJob::new("img003", 1920, 1080),
        ImageJob::new("img004", 640, 480),
        ImageJob::new("img005", 5000, 3000), // too large: fails
        ImageJob::new("img006", 2560, 1440),
        ImageJob::new("img007", 3840, 2160),
        ImageJob::new("img008", 1024, 768),
    ]
}

fn processor() -> Result<ThreadPool<ImageJob>, brigade::ConfigError> {
    let pool = ThreadPool::builder()
        .name("image-processor")
        .workers(3)
        .queue_capacity(100)
        .build()?;
    println!("Image processor started with 3 workers");
    Ok(pool)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = processor()?;
    let batch = images();
    println!("\nSubmitting {} images for processing...\n", batch.len());
    let mut results = Completions::new();
    for image in batch {
        results.push(pool.submit(image)?);
    }

    // The result collector runs while the pool works, as the seed's collector goroutine.
    let collector = thread::spawn(move || {
        let (mut succeeded, mut failed) = (0, 0);
        for (_, result) in results {
            match result {
                Ok(image) => {
                    succeeded += 1;
                    println!(
                        "SUCCESS: Image {} processed in {:?} ({:.1} KB -> {:.1} KB) {}",
                        image.image_id,
                        image.duration,
                        image.original_size as f64 / 1024.0,
                        image.new_size as f64 / 1024.0,
                        image.output_url,
                    );
                }
                Err(error) => {
                    failed += 1;
                    println!(
                        "FAILED: {}",
                        error.error().map_or(String::new(), Clone::clone)
                    );
                }
            }
        }
        println!("\nProcessing complete: {succeeded} succeeded, {failed} failed");
    });

    println!("Initiating graceful shutdown...");
    let report = pool.shutdown();
    println!(
        "Shutdown complete ({} jobs finished while draining)",
        report.finished
    );
    collector.join().expect("collector thread");

    println!("\n--- forced shutdown ---");
    let pool = processor()?;
    let handles = images()
        .into_iter()
        .map(|image| pool.submit(image))
        .collect::<Result<Vec<_>, _>>()?;
    thread::sleep(Duration::from_millis(100));
    println!("Force shutdown initiated...");
    let report = pool.shutdown_now();
    let handed_back: Vec<_> = report
        .unstarted
        .iter()
        .map(|image| image.image_id.as_str())
        .collect();
    println!(
        "Force shutdown complete: {} running jobs cancelled, {} handed back unstarted: {}",
        report.cancelled,
        handed_back.len(),
        handed_back.join(", ")
    );
    for handle in handles {
        if let Err(error) = handle.join() {
            println!("  {:?}: {error}", error.kind());
        }
    }
    Ok(())
}
