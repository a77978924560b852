//! GPU utilisation for the job report, sampled with `nvidia-smi` while a `--device cuda` job runs.
//!
//! `nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -i N -lms
//! 200` prints one line per 200 ms until stopped; a thread reads them. `nvidia-smi` comes with
//! the NVIDIA driver, so any machine that can run the CUDA provider has it; where it is missing
//! or fails, the report says so instead of holding figures.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;

use serde::Serialize;

/// What `logs/job_result.json` says about the GPU (`gpu`), for `--device cuda` jobs.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct GpuReport {
    pub device: u32,
    /// Samples taken (every 200 ms).
    pub samples: usize,
    /// Mean and peak of `utilization.gpu` (percent of time a kernel ran).
    pub utilization_mean: Option<f64>,
    pub utilization_max: Option<f64>,
    /// Peak memory in use on the device, MiB (all processes).
    pub memory_used_max_mib: Option<f64>,
    /// Why there are no figures, when there are none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

/// A running sampler; [`GpuSampler::stop`] ends it and summarises.
pub struct GpuSampler {
    device: u32,
    child: Option<Child>,
    reader: Option<JoinHandle<Vec<(f64, f64)>>>,
    error: Option<String>,
}

impl GpuSampler {
    /// Starts sampling GPU `device` with `program` (normally `nvidia-smi`).
    pub fn start(program: &str, device: u32) -> GpuSampler {
        let spawned = Command::new(program)
            .args([
                "--query-gpu=utilization.gpu,memory.used",
                "--format=csv,noheader,nounits",
                "-i",
                &device.to_string(),
                "-lms",
                "200",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        match spawned {
            Ok(mut child) => {
                let stdout = child.stdout.take().expect("piped");
                let reader = std::thread::Builder::new()
                    .name("batchscore-gpu-sampler".into())
                    .spawn(move || {
                        BufReader::new(stdout).lines().map_while(Result::ok).filter_map(|l| parse(&l)).collect()
                    })
                    .ok();
                GpuSampler { device, child: Some(child), reader, error: None }
            }
            Err(e) => GpuSampler {
                device,
                child: None,
                reader: None,
                error: Some(format!("{program} could not run ({e}); GPU utilisation was not sampled")),
            },
        }
    }

    /// Stops sampling and summarises what was seen.
    pub fn stop(mut self) -> GpuReport {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let samples = self.reader.take().and_then(|h| h.join().ok()).unwrap_or_default();
        let mut report = GpuReport { device: self.device, samples: samples.len(), ..Default::default() };
        if samples.is_empty() {
            report.unavailable =
                Some(self.error.take().unwrap_or_else(|| "nvidia-smi gave no samples for this device".into()));
            return report;
        }
        let n = samples.len() as f64;
        report.utilization_mean = Some((samples.iter().map(|s| s.0).sum::<f64>() / n * 10.0).round() / 10.0);
        report.utilization_max = samples.iter().map(|s| s.0).reduce(f64::max);
        report.memory_used_max_mib = samples.iter().map(|s| s.1).reduce(f64::max);
        report
    }
}

/// One line of `utilization.gpu,memory.used` in csv,noheader,nounits: `87, 12345`.
fn parse(line: &str) -> Option<(f64, f64)> {
    let mut it = line.split(',').map(|f| f.trim().parse::<f64>());
    match (it.next(), it.next()) {
        (Some(Ok(u)), Some(Ok(m))) => Some((u, m)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nvidia_smi_lines_and_skips_others() {
        assert_eq!(parse("87, 12345"), Some((87.0, 12345.0)));
        assert_eq!(parse("0, 3"), Some((0.0, 3.0)));
        assert_eq!(parse("[N/A], 3"), None);
        assert_eq!(parse("No devices were found"), None);
    }

    #[test]
    fn a_missing_nvidia_smi_is_reported_not_fatal() {
        let r = GpuSampler::start("/nonexistent/nvidia-smi", 0).stop();
        assert_eq!(r.samples, 0);
        assert!(r.unavailable.unwrap().contains("/nonexistent/nvidia-smi could not run"));
    }

    #[test]
    fn samples_are_summarised() {
        // A stand-in that prints what nvidia-smi prints, then keeps running as nvidia-smi -lms
        // does: the sampler's own plumbing is what is tested here (CI has no GPU).
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("smi");
        std::fs::write(&fake, "#!/bin/sh\nprintf '10, 100\\n90, 300\\n[N/A], 5\\n50, 200\\n'\nexec sleep 5\n").unwrap();
        let status = Command::new("chmod").arg("+x").arg(&fake).status().unwrap();
        assert!(status.success());
        let s = GpuSampler::start(fake.to_str().unwrap(), 0);
        std::thread::sleep(std::time::Duration::from_millis(300));
        let r = s.stop();
        assert_eq!(r.samples, 3, "{r:?}");
        assert_eq!(r.utilization_mean, Some(50.0));
        assert_eq!(r.utilization_max, Some(90.0));
        assert_eq!(r.memory_used_max_mib, Some(300.0));
        assert_eq!(r.unavailable, None);
    }
}
