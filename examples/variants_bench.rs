//! Variant throughput: a 12-megapixel photo-like JPEG through `variants::render`
//! (thumb = 256, medium = 1024), N times, one image per thread on every core.
//!
//! ```sh
//! cargo run --release --example variants_bench -- [N] [jpeg|webp]
//! ```
//!
//! See bench/variants/README.md for the figures.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use image::{ExtendedColorType, ImageEncoder, RgbImage, codecs::jpeg::JpegEncoder};
use r2_broker::profiles::{VariantFormat, VariantSpec};
use r2_broker::variants::{Limits, render};

const WIDTH: u32 = 4000;
const HEIGHT: u32 = 3000;

fn main() {
    let mut args = std::env::args().skip(1);
    let threads = thread::available_parallelism().map_or(1, |n| n.get());
    let count: usize = match args.next() {
        Some(n) => n.parse().unwrap_or_else(|_| usage(&format!("N: {n:?} is not a number"))),
        None => 4 * threads,
    };
    let format = match args.next().as_deref() {
        None | Some("jpeg") => VariantFormat::Jpeg,
        Some("webp") => VariantFormat::Webp,
        Some(other) => usage(&format!("format: {other:?} is not jpeg or webp")),
    };
    let specs =
        vec![VariantSpec { name: "thumb".into(), size: 256 }, VariantSpec { name: "medium".into(), size: 1024 }];
    let limits = Limits::default();

    let photo = photo_jpeg();
    println!(
        "source: {WIDTH}×{HEIGHT} JPEG (quality 90), {:.1} MB; variants thumb=256, medium=1024 as {format:?}",
        photo.len() as f64 / 1e6
    );
    println!("machine: {threads} cores (available_parallelism, as nproc), {}", cpu_model());

    // One untimed render: page faults, the resizer's CPU detection, and a check of the output.
    let first = render(&photo, &specs, format, &limits).expect("render");
    for r in &first {
        println!("  {} {}×{} {} bytes", r.name, r.width, r.height, r.bytes.len());
    }

    let next = AtomicUsize::new(0);
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let busy: Vec<Duration> = thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut busy = Vec::new();
                    while next.fetch_add(1, Ordering::Relaxed) < count {
                        let t = Instant::now();
                        render(&photo, &specs, format, &limits).expect("render");
                        busy.push(t.elapsed());
                    }
                    busy
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("worker")).collect()
    });
    let elapsed = started.elapsed();
    let cpu = cpu_before.zip(cpu_seconds()).map(|(before, after)| after - before);

    // What of that is the JPEG decode alone (zune-jpeg through `image`), on one thread.
    let t = Instant::now();
    image::load_from_memory(&photo).expect("decode");
    let decode_ms = t.elapsed().as_secs_f64() * 1e3;

    let mean_ms = busy.iter().map(Duration::as_secs_f64).sum::<f64>() / busy.len() as f64 * 1e3;
    println!(
        "{count} images on {threads} threads in {:.2} s: {:.2} images/s, {mean_ms:.0} ms per image (one thread's time)",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
    );
    // CPU time is what other processes on a shared machine do not inflate (much).
    if let Some(cpu) = cpu {
        let per_image = cpu / count as f64;
        println!(
            "CPU per image: {:.0} ms (process CPU time / N), i.e. {:.1} images/s per fully available core",
            per_image * 1e3,
            1.0 / per_image
        );
    }
    println!("of which decoding the source alone: {decode_ms:.0} ms; peak RSS {}", peak_rss());
}

/// User + system CPU seconds of this process, all threads (/proc/self/stat fields 14 and
/// 15, in the kernel's USER_HZ of 100 ticks a second).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces; the fields after it do not.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// The process's high-water mark (all threads), from /proc.
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l[6..].trim().to_owned()))
        .unwrap_or_else(|| "unknown".into())
}

fn usage(problem: &str) -> ! {
    eprintln!("{problem}\nusage: variants_bench [N] [jpeg|webp]");
    std::process::exit(2)
}

/// Gradients, a few soft shapes and per-pixel noise: compresses like a photo (a few MB at
/// quality 90), not like a flat test card.
fn photo_jpeg() -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut noise = move || {
        // xorshift64*: deterministic, good enough for grain.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as i32 - 128
    };
    let image = RgbImage::from_fn(WIDTH, HEIGHT, |x, y| {
        let (fx, fy) = (x as f32 / WIDTH as f32, y as f32 / HEIGHT as f32);
        let wave = ((fx * 37.0).sin() * (fy * 23.0).cos() * 40.0) as i32;
        let grain = noise() / 7;
        let r = (fx * 200.0) as i32 + wave + grain;
        let g = (fy * 180.0) as i32 + 30 - wave / 2 + grain;
        let b = ((1.0 - fx) * fy * 220.0) as i32 + grain;
        image::Rgb([r, g, b].map(|c| c.clamp(0, 255) as u8))
    });
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 90)
        .write_image(image.as_raw(), WIDTH, HEIGHT, ExtendedColorType::Rgb8)
        .expect("encode the source photo");
    out
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
