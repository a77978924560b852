//! `plan.json`: what a job scores, recorded create-only before any scoring so that a rerun or
//! another process can tell whether it is the same job.
//!
//! Two plans are the same job when their fingerprints match: the same input files (name, size
//! and ETag, or modification time on a local disk), cut into the same mini-batches, scored by
//! the same model bytes (sha256) with the same settings that shape the output. Settings that
//! only change how the job runs ([`MAY_DIFFER`]: concurrency, retries, timeouts, the error
//! threshold, logging, credentials) may differ between a job and its resumption, so a job that
//! timed out or passed its threshold can be resumed with a longer timeout or a higher threshold.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest;

use crate::engine::plan::Plan;
use crate::engine::settings::Settings;

/// The settings a resumed job or a joining process may change: they change how the job runs,
/// not what a scored mini-batch holds. `instance_count` is here too: a job started on four
/// processes may be finished by one.
pub const MAY_DIFFER: &[&str] = &[
    "model",
    "output",
    "storage_options",
    "max_concurrency",
    "instance_count",
    "max_retries",
    "timeout",
    "error_threshold",
    "logging_level",
    "batch_size",
    "sessions",
    "intra_threads",
    "progress",
    "progress_interval",
];

/// The recorded plan of a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanDoc {
    pub format: u32,
    pub job_id: String,
    pub created_at: String,
    /// The process that wrote it.
    pub created_by: String,
    /// How long a lease lives without its owner's heartbeat; fixed for the job by its plan.
    pub lease_seconds: f64,
    /// sha256 over everything below: equal fingerprints, same job.
    pub fingerprint: String,
    pub model_sha256: String,
    /// The settings that must match ([`MAY_DIFFER`] left out), as the report shows them.
    pub settings: serde_json::Map<String, Value>,
    pub inputs: Vec<PlannedInput>,
    /// The items (files, or pieces of split files) as the logs name them, in order.
    pub items: Vec<String>,
    /// Each mini-batch's items: `[first, end)` into `items`.
    pub mini_batches: Vec<[usize; 2]>,
}

/// One input file as planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedInput {
    pub file: String,
    pub size: u64,
    /// The store's ETag, or the modification time where there is none (a local disk).
    pub version: String,
}

impl PlanDoc {
    pub fn new(
        job_id: &str,
        plan: &Plan,
        settings: &Settings,
        model_sha256: &str,
        lease_seconds: f64,
        created_by: &str,
    ) -> PlanDoc {
        let mut shaping = match serde_json::to_value(settings).expect("serialisable settings") {
            Value::Object(map) => map,
            _ => unreachable!("settings serialise to an object"),
        };
        shaping.retain(|k, _| !MAY_DIFFER.contains(&k.as_str()));
        let mut doc = PlanDoc {
            format: 1,
            job_id: job_id.to_string(),
            created_at: chrono::Utc::now().to_rfc3339(),
            created_by: created_by.to_string(),
            lease_seconds,
            fingerprint: String::new(),
            model_sha256: model_sha256.to_string(),
            settings: shaping,
            inputs: plan
                .files
                .iter()
                .map(|f| PlannedInput { file: f.rel.clone(), size: f.size, version: f.version.clone() })
                .collect(),
            items: (0..plan.items.len()).map(|i| plan.label(i)).collect(),
            mini_batches: plan.mini_batches.iter().map(|r| [r.start, r.end]).collect(),
        };
        doc.fingerprint = doc.compute_fingerprint();
        doc
    }

    fn compute_fingerprint(&self) -> String {
        let mut h = sha2::Sha256::new();
        let body =
            serde_json::to_vec(&(&self.model_sha256, &self.settings, &self.inputs, &self.items, &self.mini_batches))
                .expect("serialisable");
        h.update(&body);
        format!("{:x}", h.finalize())
    }

    /// Whether the document is intact (its fingerprint is its content's).
    pub fn is_intact(&self) -> bool {
        self.fingerprint == self.compute_fingerprint()
    }

    /// What differs between this (the job's recorded plan) and `now` (this run's), in words, at
    /// most `limit` lines and a count of the rest.
    pub fn differences(&self, now: &PlanDoc, limit: usize) -> Vec<String> {
        let mut out = Vec::new();
        if self.model_sha256 != now.model_sha256 {
            out.push(format!(
                "the model differs: sha256 {} then, {} now",
                short(&self.model_sha256),
                short(&now.model_sha256)
            ));
        }
        let mut keys: Vec<&String> = self.settings.keys().chain(now.settings.keys()).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            let (a, b) = (self.settings.get(k), now.settings.get(k));
            if a != b {
                let show =
                    |v: Option<&Value>| v.map_or_else(|| "unset".to_string(), |v| crate::text::excerpt(&v.to_string()));
                out.push(format!("setting {k}: {} then, {} now", show(a), show(b)));
            }
        }
        out.extend(input_differences(&self.inputs, &now.inputs));
        if out.is_empty() && (self.items != now.items || self.mini_batches != now.mini_batches) {
            out.push(format!(
                "the mini-batches differ: {} mini-batches of {} items then, {} of {} now",
                self.mini_batches.len(),
                self.items.len(),
                now.mini_batches.len(),
                now.items.len()
            ));
        }
        if out.len() > limit {
            let more = out.len() - limit;
            out.truncate(limit);
            out.push(format!("... and {more} more difference(s)"));
        }
        out
    }
}

/// Input files added, gone or changed, in name order.
fn input_differences(then: &[PlannedInput], now: &[PlannedInput]) -> Vec<String> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < then.len() || j < now.len() {
        match (then.get(i), now.get(j)) {
            (Some(a), Some(b)) if a.file == b.file => {
                if a.size != b.size {
                    out.push(format!("input file {}: {} bytes then, {} now", a.file, a.size, b.size));
                } else if a.version != b.version {
                    out.push(format!("input file {} changed: version {} then, {} now", a.file, a.version, b.version));
                }
                i += 1;
                j += 1;
            }
            (Some(a), b) if b.is_none_or(|b| a.file < b.file) => {
                out.push(format!("input file {} is gone", a.file));
                i += 1;
            }
            (_, Some(b)) => {
                out.push(format!("input file {} is new", b.file));
                j += 1;
            }
            (_, None) => unreachable!("loop condition"),
        }
    }
    out
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(file: &str, size: u64, version: &str) -> PlannedInput {
        PlannedInput { file: file.into(), size, version: version.into() }
    }

    fn doc(inputs: Vec<PlannedInput>, settings: Value) -> PlanDoc {
        let Value::Object(settings) = settings else { panic!() };
        let mut d = PlanDoc {
            format: 1,
            job_id: "j".into(),
            created_at: String::new(),
            created_by: String::new(),
            lease_seconds: 60.0,
            fingerprint: String::new(),
            model_sha256: "a".repeat(64),
            settings,
            items: inputs.iter().map(|i| i.file.clone()).collect(),
            mini_batches: vec![[0, inputs.len()]],
            inputs,
        };
        d.fingerprint = d.compute_fingerprint();
        d
    }

    #[test]
    fn differences_name_the_files_and_settings() {
        let then = doc(
            vec![input("a.csv", 10, "1"), input("b.csv", 20, "1"), input("c.csv", 30, "1")],
            serde_json::json!({"mini_batch_size": 10, "output_file_name": "predictions.csv"}),
        );
        let now = doc(
            vec![input("a.csv", 11, "2"), input("c.csv", 30, "2"), input("d.csv", 5, "1")],
            serde_json::json!({"mini_batch_size": 5, "output_file_name": "predictions.csv"}),
        );
        assert!(then.is_intact() && now.is_intact());
        assert_ne!(then.fingerprint, now.fingerprint);
        let d = then.differences(&now, 10);
        assert_eq!(
            d,
            vec![
                "setting mini_batch_size: 10 then, 5 now",
                "input file a.csv: 10 bytes then, 11 now",
                "input file b.csv is gone",
                "input file c.csv changed: version 1 then, 2 now",
                "input file d.csv is new",
            ]
        );
        assert_eq!(then.differences(&now, 2).last().unwrap(), "... and 3 more difference(s)");
        assert!(then.differences(&then, 10).is_empty());
    }
}
