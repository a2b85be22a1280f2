//! The `ehrqa` binary: logging to stderr, then the CLI. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use ehrqa::cli::Cli;
use tracing_subscriber::EnvFilter;

/// JSON parsing allocates many small objects; mimalloc roughly halves that cost over glibc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    restore_sigpipe();
    let cli = Cli::parse();
    if cli.command.keeps_freed_memory() {
        keep_freed_memory();
    }
    if cli.command.ingests_in_bulk() {
        no_huge_pages();
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli.run()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line.
fn one_line(e: &anyhow::Error) -> String {
    e.chain().map(ToString::to_string).collect::<Vec<_>>().join(": ")
}

/// Rust ignores SIGPIPE, so `ehrqa patients | head` would panic on a closed stdout; a command-line
/// tool should simply stop, as other Unix tools do.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: resetting a signal's disposition to its default before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Freed memory stays with the allocator for reuse instead of going back to the OS: the model
/// reallocates its working buffers (dequantized weights, logits) every step, and faulting in
/// fresh zeroed pages cost 5-15% of generation time; ingest's loader threads allocate what the
/// writer frees, and the zeroing cost about 5% of its CPU. The price is that the resident size
/// stays at its peak, so only commands that generate or ingest and then exit ask for it. The
/// service keeps mimalloc's default, which returns memory unused for a second:
/// after a 60 MB input the service's resident size falls back to its start within seconds
/// instead of staying at the peak (`tools/mem_large_resource.py`). `MIMALLOC_PURGE_DELAY=-1` in
/// the environment gives `serve` the old behaviour.
fn keep_freed_memory() {
    /// `mi_option_purge_delay` in mimalloc v3's `mimalloc.h` (the bindings do not name it).
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: sets a plain option before any other thread exists; mimalloc reads it when purging.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) };
}

/// Turns transparent huge pages off for this process. mimalloc asks the kernel for them, and an
/// ingest touches its heaps sparsely at first: each first touch of a 2 MB region had the kernel
/// zero all of it. On `synthea-java`, a fresh process zeroed 97 huge pages (194 MB; `thp_fault_alloc`
/// in `/proc/vmstat`), `clear_page_erms` was 14% of all samples, and with huge pages off the
/// peak resident size fell from 283 to 218 MiB and the process's CPU time by 9%
/// (`tools/bench_alternate.py`). Generation showed no difference either way, so only bulk ingest
/// asks for it. Failing changes nothing but speed.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: sets a flag on this process's memory map; no memory is passed.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
