"""batchscore against the alternatives people use for batch inference: runs each workload through
each contender, checks what each one wrote, and reports throughput, wall time and peak memory.

    harness.py [--scale full|small] [--only W1-gbdt,W1-linear,W2-cnn] [--contenders abcde]
               [--batchscore PATH] [--raw PATH] [--data DIR] [--results DIR] [--repeat N]
               [--update-benchmarks] [--keep-outputs]
    harness.py --from-results DIR [--update-benchmarks]    (render again, run nothing)

Workloads (inputs and models from gen_data.py and gen_models.py under --data):
  W1-gbdt    W1 tabular Parquet through gbdt.onnx (200-tree GBDT: the model dominates)
  W1-linear  W1 through linear.onnx (logistic regression: reading and writing dominate)
  W2-cnn     W2 JPEG/PNG images, resized to 128x128, through cnn.onnx (a small CNN)
Contenders:
  (a) batchscore   the release binary, `score` with 2 workers x 1 ORT thread
  (b) raw limit    --raw: loads every input into memory untimed, then times the model calls
                   alone (2 sessions x 1 thread); its own timed seconds give its throughput
  (c) pool         pool_score.py: a multiprocessing Pool of 2 processes, Azure ML parallel-run
                   style (init/run, mini-batches of 10 files, one appended Parquet file)
  (d) ray          ray_score.py: Ray Data on a local cluster, 2 predictor actors (1 thread each)
  (e) daft         daft_score.py: Daft's native runner, a @daft.cls model class with
                   max_concurrency=2 and a @daft.method.batch method (1 thread each)

Fairness: every contender gets the same model file, the same inputs, 2 ONNX Runtime sessions
with 1 intra-op and 1 inter-op thread each (the machine's 2 cores), the same rows/images per model
call (1024 rows, 32 images) and the same image preprocessing (stretch to 128x128, bilinear,
x/255, NCHW). Before each workload every input file and the model are read once, untimed, so each
contender starts with a warm page cache (the page cache cannot be dropped without root).
Contenders run one after another, never at the same time, with OMP_NUM_THREADS=1 (no stray BLAS
threads). The second before each run is spent measuring what the machine is already doing: a
warning is printed, and a note added to the report, when other work uses more than 0.2 cores.

Measured per run, from outside the process: wall time from start to exit (what a user pays,
start-up included), items written (the output is read back and its row count must equal the
input count, or the run is an error), and peak memory of the whole process tree, sampled every
0.1 s (less often when a sample costs more than 5% of a core, as with Ray's ~17 processes): the
sum over the process and all its descendants of PSS (proportional set size from
/proc/PID/smaps_rollup, RSS where that is unreadable) with shared memory counted once: private
PSS (PSS minus Pss_Shmem) plus the larger of the tree's Pss_Shmem and the growth of /dev/shm's
used bytes since the run started (where Ray's object store lives). Processes of the tree that
outlive it (a daemon left behind) are reported and stopped. The predictions of (c), (d) and (e) are
compared with (a)'s: the largest absolute difference of any probability is reported.

Writes RESULTS/results.json, RESULTS/report.md (the BENCHMARKS.md section) and
RESULTS/BENCHMARKS-compare.png; with --update-benchmarks, also rewrites BENCHMARKS.md between
`<!-- compare:begin -->` and `<!-- compare:end -->` (adding the markers at the end when absent)
and copies the plot beside it.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable
WORKERS = 2
MAX_SAMPLER_SHARE = 0.05
TIMEOUT = {"small": 600, "full": 3600}
IMAGE_SIZE = 128
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}

WORKLOADS = {
    "W1-gbdt": {"kind": "tabular", "data": "w1", "model": "gbdt.onnx", "batch": 1024,
                "what": "rows", "desc": "W1 Parquet rows through a 200-tree GBDT"},
    "W1-linear": {"kind": "tabular", "data": "w1", "model": "linear.onnx", "batch": 1024,
                  "what": "rows", "desc": "W1 Parquet rows through a logistic regression"},
    "W2-cnn": {"kind": "image", "data": "w2", "model": "cnn.onnx", "batch": 32,
               "what": "images", "desc": "W2 JPEG/PNG images, 128x128, through a small CNN"},
}
CONTENDERS = {
    "a": "batchscore",
    "b": "raw ORT limit",
    "c": "Python Pool (Azure parallel-run style)",
    "d": "Ray Data",
    "e": "Daft",
}
BEGIN, END = "<!-- compare:begin -->", "<!-- compare:end -->"


def log(msg):
    print(msg, flush=True)


# --------------------------------------------------------------------------------------------
# Measuring a process tree
# --------------------------------------------------------------------------------------------


def _memory(pid):
    """(private PSS, Pss_Shmem) in bytes of one process; RSS and 0 where smaps is unreadable."""
    try:
        pss = shmem = None
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
                elif line.startswith("Pss_Shmem:"):
                    shmem = int(line.split()[1]) * 1024
        if pss is not None:
            return pss - (shmem or 0), shmem or 0
    except (OSError, ValueError):
        pass
    try:
        return psutil.Process(pid).memory_info().rss, 0
    except psutil.Error:
        return 0, 0


def _shm_used():
    try:
        return shutil.disk_usage("/dev/shm").used
    except OSError:
        return 0


class TreeMonitor(threading.Thread):
    """Samples the memory of a process and all its descendants every `interval` seconds, and
    remembers every process it saw (to find any left running after the root exits)."""

    def __init__(self, pid, interval=0.1):
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.interval = interval
        self.stop = threading.Event()
        self.seen = {}  # pid -> (create_time, name)
        self.peak = {"total": 0, "private": 0, "shmem": 0, "shm_growth": 0, "processes": 0}
        self.shm_base = _shm_used()

    def _tree(self):
        procs = {}
        try:
            procs[self.root.pid] = self.root
            for child in self.root.children(recursive=True):
                procs[child.pid] = child
        except psutil.Error:
            pass
        # Processes seen before that were re-parented away from the tree still count.
        for pid, (created, _) in list(self.seen.items()):
            if pid not in procs:
                try:
                    p = psutil.Process(pid)
                    if p.create_time() == created:
                        procs[pid] = p
                except psutil.Error:
                    pass
        return procs

    def sample(self):
        procs = self._tree()
        private = shmem = 0
        for pid, p in procs.items():
            if pid not in self.seen:
                try:
                    self.seen[pid] = (p.create_time(), p.name())
                except psutil.Error:
                    continue
            a, b = _memory(pid)
            private += a
            shmem += b
        growth = max(0, _shm_used() - self.shm_base)
        total = private + max(shmem, growth)
        if total > self.peak["total"]:
            self.peak = {"total": total, "private": private, "shmem": shmem,
                         "shm_growth": growth, "processes": len(procs)}

    def run(self):
        # Every `interval` seconds, or less often when a sample is expensive (reading smaps
        # costs a few ms per process; Ray runs ~17 of them): the sampler takes at most
        # MAX_SAMPLER_SHARE of one core from the machine it is measuring.
        self.samples, self.sampling_cpu = 0, 0.0
        while not self.stop.is_set():
            t = time.thread_time()
            self.sample()
            cost = time.thread_time() - t
            self.sampling_cpu += cost
            self.samples += 1
            self.stop.wait(max(self.interval, cost / MAX_SAMPLER_SHARE - cost))

    def leftovers(self, grace=10.0):
        """Processes of the tree still running `grace` seconds after the root exited; they are
        stopped (SIGTERM, then SIGKILL) and returned as 'pid name' strings."""
        deadline = time.time() + grace
        alive = []
        while True:
            alive = []
            for pid, (created, name) in self.seen.items():
                if pid == self.root.pid:
                    continue
                try:
                    p = psutil.Process(pid)
                    if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                        alive.append((p, name))
                except psutil.Error:
                    pass
            if not alive or time.time() > deadline:
                break
            time.sleep(0.25)
        for p, _ in alive:
            try:
                p.terminate()
            except psutil.Error:
                pass
        _, still = psutil.wait_procs([p for p, _ in alive], timeout=5)
        for p in still:
            try:
                p.kill()
            except psutil.Error:
                pass
        return [f"{p.pid} {name}" for p, name in alive]


def busy_cores(seconds=1.0):
    """Cores' worth of CPU time the whole machine used over `seconds` (from /proc/stat): what
    other work takes while nothing of the benchmark runs."""
    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)
        return sum(v[:8]), idle

    try:
        t0, i0 = snap()
        time.sleep(seconds)
        t1, i1 = snap()
    except (OSError, ValueError):
        return None
    total = t1 - t0
    return (total - (i1 - i0)) / total * os.cpu_count() if total else None


def wait4(proc, timeout):
    """Waits for proc (polling every 5 ms) and reaps it with its resource usage: (exit code,
    rusage), or (None, None) after `timeout` seconds (None: no limit)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        pid, status, rusage = os.wait4(proc.pid, 0 if deadline is None else os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, rusage
        if time.monotonic() > deadline:
            return None, None
        time.sleep(0.005)


def run_measured(cmd, log_prefix, timeout, env=None):
    """Runs cmd with stdout/stderr to files; returns wall, peak memory, exit code, stdout."""
    out_path, err_path = log_prefix + ".stdout", log_prefix + ".stderr"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                cwd=ROOT, env=env, start_new_session=True)
        mon = TreeMonitor(proc.pid)
        mon.sample()
        mon.start()
        timed_out = False
        rc, rusage = wait4(proc, timeout)
        if rc is None:
            timed_out = True
            os.killpg(proc.pid, signal.SIGINT)
            rc, rusage = wait4(proc, 30)
            if rc is None:
                os.killpg(proc.pid, signal.SIGKILL)
                rc, rusage = wait4(proc, None)
        wall = time.perf_counter() - t0
        mon.stop.set()
        mon.join()
        left = mon.leftovers()
    with open(out_path) as f:
        stdout = f.read()
    return {"wall": wall, "rc": rc, "timed_out": timed_out, "peak": mon.peak,
            "sampler": {"samples": mon.samples, "cpu_seconds": round(mon.sampling_cpu, 3)},
            # CPU time of the main process and the children it waited for, from the kernel
            # (not ru_maxrss: after fork + exec it starts from the harness's own RSS).
            "root_rusage": {"user_seconds": rusage.ru_utime if rusage else None,
                            "system_seconds": rusage.ru_stime if rusage else None},
            "leftover_processes": left, "stdout": stdout, "stdout_file": out_path,
            "stderr_file": err_path}


def last_json_line(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


# --------------------------------------------------------------------------------------------
# Inputs and outputs
# --------------------------------------------------------------------------------------------


def input_files(root, kind):
    found = []
    for d, _, names in os.walk(root):
        for name in names:
            ext = os.path.splitext(name)[1].lower()
            if (kind == "tabular" and ext == ".parquet") or (
                    kind == "image" and ext in IMAGE_EXTENSIONS):
                found.append(os.path.join(d, name))
    return sorted(found)


def input_items(files, kind):
    if kind == "image":
        return len(files)
    return sum(pq.read_metadata(f).num_rows for f in files)


def warm_page_cache(paths):
    """Reads every byte once (what `cat FILES > /dev/null` does), untimed."""
    total = 0
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while True:
                chunk = f.read(1 << 22)
                if not chunk:
                    break
                total += len(chunk)
    return total


def output_table(out_dir):
    files = [os.path.join(d, n) for d, _, names in os.walk(out_dir) for n in names
             if n.endswith(".parquet") and "/logs" not in d]
    if not files:
        return None
    return pads.dataset(sorted(files), format="parquet").to_table()


def probabilities_by_key(table, kind):
    """Probabilities as a [n, k] array, sorted by id (tabular) or file (image)."""
    key = "id" if kind == "tabular" else "file"
    table = table.select([key, "probabilities"]).sort_by(key)
    col = table.column("probabilities").combine_chunks()
    if isinstance(col.type, pa.BaseExtensionType):
        col = col.storage
    values = pc.list_flatten(col).to_numpy(zero_copy_only=False)
    keys = table.column(key)
    if pa.types.is_large_string(keys.type):  # Daft writes strings as large_string
        keys = keys.cast(pa.string())
    return keys, values.reshape(len(table), -1)


# --------------------------------------------------------------------------------------------
# Contenders
# --------------------------------------------------------------------------------------------


def command(c, args, wl, model, data_dir, out_dir):
    kind, batch = wl["kind"], str(wl["batch"])
    if c == "a":
        cmd = [args.batchscore, "score", "--model", model, "--input", data_dir, "--output", out_dir,
               "--output-file-name", "predictions.parquet", "--progress", "off",
               "--logging-level", "warning", "--max-concurrency", str(WORKERS),
               "--intra-threads", "1", "--batch-size", batch]
        if kind == "tabular":
            cmd += ["--passthrough", "id"]
        else:
            cmd += ["--image-size", f"{IMAGE_SIZE}x{IMAGE_SIZE}", "--resize", "stretch"]
        return cmd
    if c == "b":
        cmd = [args.raw, "--model", model, "--input", data_dir, "--kind", kind,
               "--batch-size", batch, "--sessions", str(WORKERS), "--intra", "1"]
        if kind == "tabular":
            cmd += ["--passthrough", "id"]
        else:
            cmd += ["--image-size", str(IMAGE_SIZE)]
        return cmd
    script = {"c": "pool_score.py", "d": "ray_score.py", "e": "daft_score.py"}[c]
    cmd = [PY, os.path.join(HERE, script), "--model", model, "--input", data_dir,
           "--output", out_dir, "--workers", str(WORKERS), "--kind", kind, "--batch-size", batch,
           "--image-size", str(IMAGE_SIZE)]
    if c == "c":
        cmd += ["--mini-batch-files", "10"]
    elif c == "e":
        pass
    else:
        cmd += ["--cluster-cpus", str(2 * WORKERS), "--actor-cpus", "1", "--read-cpus", "1",
                "--write-cpus", "1"]
        if kind == "tabular":
            cmd += ["--parquet-reader", "v1"]
    return cmd


def run_contender(c, args, wl_name, wl, model, data_dir, expected, results_dir, rep, reference):
    wdir = os.path.join(results_dir, wl_name)
    os.makedirs(wdir, exist_ok=True)
    out_dir = os.path.join(wdir, f"{c}-out-{rep}")
    cmd = command(c, args, wl, model, data_dir, out_dir)
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", OMP_NUM_THREADS="1")
    log(f"  ({c}) {CONTENDERS[c]}, run {rep}: {shlex.join(cmd)}")
    busy = busy_cores()
    if busy is not None and busy > 0.2:
        log(f"      warning: other work is using {busy:.1f} cores of {os.cpu_count()} right now")
    r = run_measured(cmd, os.path.join(wdir, f"{c}-{rep}"), TIMEOUT[args.scale], env=env)
    res = {"contender": c, "name": CONTENDERS[c], "run": rep, "command": shlex.join(cmd),
           "wall_seconds": r["wall"], "exit_code": r["rc"], "timed_out": r["timed_out"],
           "peak_memory_bytes": r["peak"]["total"], "peak_memory_detail": r["peak"],
           "leftover_processes": r["leftover_processes"], "expected_items": expected,
           "busy_cores_before": busy, "memory_sampler": r["sampler"],
           "root_rusage": r["root_rusage"],
           "stdout": r["stdout_file"], "stderr": r["stderr_file"], "errors": []}
    if r["leftover_processes"]:
        res["errors"].append(f"processes left running (stopped): {r['leftover_processes']}")
    if r["rc"] != 0:
        res["errors"].append(f"exit code {r['rc']}" + (" (timed out)" if r["timed_out"] else ""))
        try:
            with open(r["stderr_file"]) as f:
                res["stderr_tail"] = f.read()[-2000:]
        except OSError:
            pass
    printed = last_json_line(r["stdout"])
    res["printed"] = printed
    items = None
    if c == "b":
        if printed and "items" in printed and "seconds" in printed:
            items = printed["items"]
            res["timed_seconds"] = printed["seconds"]
        elif r["rc"] == 0:
            res["errors"].append("no JSON line with items and seconds on stdout")
    else:
        table = output_table(out_dir) if os.path.isdir(out_dir) else None
        if table is not None:
            items = table.num_rows
            if c == "a":
                reference.setdefault("table", table)
            elif "table" in reference and items == expected:
                try:
                    ka, pa_ = probabilities_by_key(reference["table"], wl["kind"])
                    kx, px = probabilities_by_key(table, wl["kind"])
                    if not ka.equals(kx):
                        res["errors"].append("output keys differ from batchscore's")
                    else:
                        res["max_abs_diff_vs_a"] = float(np.abs(pa_ - px).max())
                except Exception as e:  # noqa: BLE001 - reported, not fatal
                    res["errors"].append(f"comparing with batchscore's output: {e}")
            res["output_columns"] = table.column_names
        elif r["rc"] == 0:
            res["errors"].append("no output Parquet written")
        if c == "a":
            jr = os.path.join(out_dir, "logs", "job_result.json")
            if os.path.exists(jr):
                with open(jr) as f:
                    job = json.load(f)
                res["timings_seconds"] = job.get("timings_seconds")
                res["job_model"] = {k: job.get("model", {}).get(k)
                                    for k in ("workers", "intra_threads", "batch_size")}
                res["versions"] = job.get("versions")
                shutil.copy(jr, os.path.join(wdir, f"a-job_result-{rep}.json"))
        elif printed and "startup_seconds" in printed and "seconds" in printed:
            res["startup_seconds"] = printed["startup_seconds"]
    res["items"] = items
    if items is not None and items != expected:
        res["errors"].append(f"wrote {items} {wl['what']}, expected {expected}")
    # Throughput: whole job (wall) for a, c, d; the model calls alone for b.
    if items:
        if c == "b":
            timed = res.get("timed_seconds")
            res["items_per_second"] = items / timed if timed else None
        else:
            res["items_per_second"] = items / r["wall"]
            inner = None
            if c == "a" and res.get("timings_seconds", {}).get("wall"):
                inner = res["timings_seconds"]["wall"]
            elif res.get("startup_seconds") is not None and printed:
                inner = printed["seconds"] - res["startup_seconds"]
            if inner:
                res["items_per_second_excl_startup"] = items / inner
    if not args.keep_outputs and os.path.isdir(out_dir):
        logs = os.path.join(out_dir, "logs")
        for name in os.listdir(out_dir):
            if os.path.join(out_dir, name) != logs:
                p = os.path.join(out_dir, name)
                shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
    status = "; ".join(res["errors"]) or "ok"
    ips = res.get("items_per_second")
    log(f"      wall {r['wall']:.2f} s, items {items}, "
        f"{'%.0f' % ips if ips else '-'} {wl['what']}/s, peak {r['peak']['total'] / 1e6:.0f} MB"
        f" ({r['peak']['processes']} processes): {status}")
    return res


def summarise(runs):
    """One contender's runs on one workload -> the median run's figures (by throughput)."""
    ok = [r for r in runs if not r["errors"] and r.get("items_per_second")]
    if not ok:
        return {"ok": False, "runs": len(runs),
                "errors": sorted({e for r in runs for e in r["errors"]}),
                "wall_seconds": runs[-1]["wall_seconds"] if runs else None,
                "peak_memory_bytes": max((r["peak_memory_bytes"] for r in runs), default=None)}
    ok.sort(key=lambda r: r["items_per_second"])
    med = ok[len(ok) // 2]
    s = {"ok": True, "runs": len(runs), "items": med["items"],
         "items_per_second": statistics.median(r["items_per_second"] for r in ok),
         "wall_seconds": statistics.median(r["wall_seconds"] for r in ok),
         "peak_memory_bytes": max(r["peak_memory_bytes"] for r in ok),
         "memory_samples": min(r.get("memory_sampler", {}).get("samples", 0) for r in ok)}
    excl = [r["items_per_second_excl_startup"] for r in ok
            if r.get("items_per_second_excl_startup")]
    if excl:
        s["items_per_second_excl_startup"] = statistics.median(excl)
    for key in ("timed_seconds", "timings_seconds", "max_abs_diff_vs_a", "startup_seconds",
                "job_model", "versions", "output_columns"):
        if key in med:
            s[key] = med[key]
    return s


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = psutil.virtual_memory().total
    os_name = platform.platform()
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    os_name = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "ram_bytes": mem, "os": os_name,
            "kernel": platform.release(), "python": platform.python_version()}


def git_commit():
    def git(*a):
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return commit, dirty


def versions():
    import importlib.metadata as md

    v = {}
    for name in ("onnxruntime", "ray", "pandas", "pyarrow", "numpy", "pillow", "psutil"):
        try:
            v[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return v


def flatten(d, prefix=""):
    """{"a": {"b": 1}} -> {"a.b": 1}, for a table of nested timings."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def fmt_rate(x):
    if x is None:
        return "-"
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e4:
        return f"{x / 1e3:.0f} k"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f}"


def fmt_ratio(a, x):
    if not a or not x:
        return "-"
    return f"{a / x:.2f}x"


def report_markdown(res, plot_rel):
    m, when = res["machine"], res["date"]
    commit = res["commit"] + (" (with uncommitted changes)" if res["dirty"] else "")
    lines = [
        f"## Against the alternatives ({res['scale']} scale, {when[:10]})",
        "",
        f"Machine: {m['nproc']} vCPU (`nproc` {m['nproc']}, {m['cpu']}), "
        f"{m['ram_bytes'] / 2**30:.0f} GiB RAM, {m['os']}, Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in res["versions"].items())
        + f". Taken {when} at commit {commit}.",
        "",
        "Command (from the repository root; data and models are generated once from fixed seeds):",
        "",
        "```",
        "benches/compare/setup.sh",
        f".venv-bench/bin/python benches/compare/gen_data.py --out {res['data_arg']} "
        f"--scale {res['scale']}",
        f".venv-bench/bin/python benches/compare/gen_models.py --data {res['data_arg']} "
        f"--out {res['data_arg']}/models",
        res["command"],
        "```",
        "",
    ]
    if "--raw" in res["command"]:
        lines += ["`--raw` names the raw-limit binary that `cargo bench --bench raw_limit "
                  "--no-run` builds (benches/raw_limit.rs); `cargo build --release` builds "
                  "batchscore.", ""]
    lines += [
        "Contenders, each with 2 ONNX Runtime sessions x 1 intra-op thread (the 2 cores), the same "
        "model file, 1024 rows or 32 images per model call, and images stretched to 128x128 "
        "(bilinear, x/255, NCHW):",
        "",
        "- (a) **batchscore**: `batchscore score --max-concurrency 2 --intra-threads 1`, "
        "Parquet output; wall time of the whole process.",
        "- (b) **raw limit**: a Rust program that loads every input into memory untimed and then "
        "times only the model calls (2 sessions x 1 thread): the ceiling for any tool on this "
        "machine. Its figure is its own timed seconds; its memory holds the whole dataset by "
        "design.",
        "- (c) **Python Pool**: `benches/compare/pool_score.py`, an Azure ML parallel-run style "
        "scoring script: `multiprocessing.Pool(2)`, `init()` opens the session, `run()` scores "
        "mini-batches of 10 files (pandas/pyarrow, or PIL with `Image.draft` so that a large JPEG "
        "is decoded at 1/2, 1/4 or 1/8 of its size, as a speed-minded script does), the parent "
        "appends each result to one Parquet file.",
        "- (d) **Ray Data**: `benches/compare/ray_score.py`: a local Ray cluster, "
        "`read_parquet` / `read_images`, `map_batches` with 2 predictor actors, "
        "`write_parquet` (settings in the notes below).",
        "- (e) **Daft**: `benches/compare/daft_score.py`: Daft's native runner as its docs show "
        "batch inference: `read_parquet` / `from_glob_path` + `download().decode_image().resize()`, "
        "a `@daft.cls(max_concurrency=2)` model class whose `@daft.method.batch` method runs the "
        "session and returns Arrow arrays, `write_parquet`.",
        "",
        "Items/s is items / wall time of the whole process for (a), (c), (d), (e) (start-up included: "
        "what a user pays) and items / timed model seconds for (b); \"excl. start-up\" divides by "
        "the time the tool itself reports after its start-up (batchscore's job wall from "
        "`logs/job_result.json`; for (c), (d) and (e) the time after the workers' sessions (c), "
        "the Ray cluster (d) or Daft's import (e) were up). Peak memory is the largest sum, sampled every 0.1 s (less often "
        "where a sample would take more than 5% of a core), of the PSS of the process and all "
        "its descendants, shared memory counted once (private PSS plus "
        "the larger of the tree's shared-memory PSS and the growth of /dev/shm, where Ray keeps "
        "its object store). Every output is read back: its row count must equal the input's, and "
        "the largest difference of any probability from batchscore's is shown. Before each "
        "workload every input file is read once, untimed, so every contender starts with a warm "
        f"page cache. Runs per contender: {res['repeat']}, the contenders in turn (median shown).",
        "",
    ]
    for wl_name, wl in res["workloads"].items():
        s = wl["contenders"]
        a_ips = s.get("a", {}).get("items_per_second")
        lines += [
            f"### {wl_name}: {WORKLOADS[wl_name]['desc']}",
            "",
            f"{wl['items']:,} {wl['what']} in {wl['files']:,} files ({wl['bytes'] / 1e6:.0f} MB); "
            f"model `{wl['model']}` ({wl['model_bytes'] / 1e3:.0f} kB).",
            "",
            f"| contender | {wl['what']}/s | excl. start-up | wall | peak memory | a/x "
            "| max abs diff vs (a) |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in CONTENDERS:
            x = s.get(c)
            if x is None:
                lines.append(f"| ({c}) {CONTENDERS[c]} | - | - | - | - | - | not run |")
                continue
            if not x["ok"]:
                lines.append(f"| ({c}) {CONTENDERS[c]} | error | - | "
                             f"{x['wall_seconds']:.1f} s | - | - | "
                             f"{'; '.join(x['errors'])[:200]} |")
                continue
            wall = f"{x['timed_seconds']:.2f} s timed" if c == "b" else f"{x['wall_seconds']:.2f} s"
            mem = x["peak_memory_bytes"] / 1e6
            # Fewer than 3 samples: the process ended before the sampler saw it grow.
            mem_s = f"{mem:.0f} MB" if x.get("memory_samples", 3) >= 3 else "too short"
            diff = x.get("max_abs_diff_vs_a")
            diff_s = "(reference)" if c == "a" else ("-" if diff is None else f"{diff:.1e}")
            lines.append(
                f"| ({c}) {CONTENDERS[c]} | {fmt_rate(x['items_per_second'])} | "
                f"{fmt_rate(x.get('items_per_second_excl_startup'))} | {wall} | {mem_s} | "
                f"{'1.00x' if c == 'a' else fmt_ratio(a_ips, x['items_per_second'])} | {diff_s} |")
        lines.append("")
    stages = {w: e["contenders"]["a"].get("timings_seconds") for w, e in res["workloads"].items()
              if e["contenders"].get("a", {}).get("ok")}
    stages = {w: flatten(t) for w, t in stages.items() if t}
    if stages:
        keys = []
        for t in stages.values():
            keys += [k for k in t if k not in keys]

        def cell(v):
            return f"{v:.2f} s" if isinstance(v, float) else ("-" if v is None else str(v))

        lines += [
            "### Where batchscore's time goes",
            "",
            "`timings_seconds` of each job's `logs/job_result.json`: wall is the job's own (after "
            "start-up); read, decode and infer are summed over mini-batches, which run side by "
            "side, so they can add up to more than the wall time. `sessions.*` is the model "
            "sessions' time (alive, waiting for input, waiting for the writer), summed over "
            "sessions; with one session per worker (the CPU default) they decode their own input "
            "and `workers.threads` is 0.",
            "",
            "| workload | " + " | ".join(keys) + " |",
            "|---|" + "---|" * len(keys),
        ]
        for w, t in stages.items():
            lines.append(f"| {w} | " + " | ".join(cell(t.get(k)) for k in keys) + " |")
        lines.append("")
    lines += [
        "### Ratios",
        "",
        "batchscore's throughput (whole job) divided by each alternative's (above 1: batchscore "
        "is faster; a/b is the fraction of the raw model-call ceiling that batchscore reaches).",
        "",
        "| workload | a/b | a/c | a/d | a/e |",
        "|---|---|---|---|---|",
    ]
    for wl_name, wl in res["workloads"].items():
        s = wl["contenders"]
        a = s.get("a", {}).get("items_per_second") if s.get("a", {}).get("ok") else None
        cells = []
        for c in "bcde":
            x = s.get(c)
            cells.append(fmt_ratio(a, x["items_per_second"]) if x and x["ok"] else "-")
        lines.append(f"| {wl_name} | " + " | ".join(cells) + " |")
    lines += ["", f"![throughput and peak memory per workload]({plot_rel})", ""]
    if res.get("notes"):
        lines += ["Notes:", ""] + [f"- {n}" for n in res["notes"]] + [""]
    return "\n".join(lines)


def plot(res, path):
    """Two panels: throughput per workload (log scale) and peak memory per workload."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(res["workloads"])
    xs = np.arange(len(names))
    colors = {"a": "#1f77b4", "b": "#7f7f7f", "c": "#ff7f0e", "d": "#2ca02c", "e": "#9467bd"}

    def figures(c):
        out = []
        for n in names:
            x = res["workloads"][n]["contenders"].get(c)
            out.append(x if x is not None and x["ok"] else None)
        return out

    present = [c for c in CONTENDERS if any(figures(c))]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.6))
    panels = [
        (ax1, present, lambda x: x["items_per_second"], fmt_rate, 90),
        # (b) holds every input in memory by design: its memory is not a comparable figure.
        (ax2, [c for c in present if c != "b"],
         lambda x: x["peak_memory_bytes"] / 1e6 if x.get("memory_samples", 3) >= 3 else 0,
         lambda v: f"{v:.0f}", 0),
    ]
    for ax, cs, value, label_of, rotation in panels:
        width = 0.8 / max(1, len(cs))
        for i, c in enumerate(cs):
            vals = [value(x) if x else 0 for x in figures(c)]
            bars = ax.bar(xs + (i - (len(cs) - 1) / 2) * width, vals, width, color=colors[c],
                          label=f"({c}) {CONTENDERS[c]}")
            for bar, v in zip(bars, vals, strict=True):
                if v:
                    ax.annotate(label_of(v), (bar.get_x() + bar.get_width() / 2, v), ha="center",
                                va="bottom", fontsize=6, rotation=rotation, xytext=(0, 2),
                                textcoords="offset points")
        ax.set_xticks(xs)
        ax.set_xticklabels(names)
        ax.grid(axis="y", alpha=0.3)
    ax1.set_yscale("log")
    ax1.set_ylabel("rows/s or images/s (log scale)")
    ax1.set_title("Throughput: whole job; (b) model calls only", fontsize=10)
    ax1.margins(y=0.3)
    ax2.set_ylabel("peak memory of the process tree (MB, PSS)")
    ax2.set_title("Peak memory"
                  + (" ((b) not shown: it holds all inputs)" if "b" in present else ""),
                  fontsize=10)
    ax2.margins(y=0.15)
    handles, labels = ax1.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    m = res["machine"]
    fig.suptitle(f"batchscore vs alternatives, {res['scale']} scale, {m['nproc']} vCPU "
                 f"{m['cpu']}, commit {res['commit']}", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def update_benchmarks(path, section):
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    block = f"{BEGIN}\n{section.rstrip()}\n{END}"
    if BEGIN in text and END in text and text.index(BEGIN) < text.index(END):
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


# --------------------------------------------------------------------------------------------


def reproducible_args(argv):
    """The command-line arguments minus those that only name where this run's files went."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("--results", "--benchmarks-file"):
            skip = True
            continue
        if a.startswith(("--results=", "--benchmarks-file=", "--keep-outputs")):
            continue
        out.append(shlex.quote(a))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scale", choices=["full", "small"], default="full")
    p.add_argument("--only", help="comma-separated workloads: " + ",".join(WORKLOADS))
    p.add_argument("--contenders", default="abcde", help="which of a, b, c, d, e to run [abcde]")
    p.add_argument("--batchscore", default="target/release/batchscore")
    p.add_argument("--raw", help="the raw-limit binary; without it (b) is shown as '-'")
    p.add_argument("--data", default="target/bench-data/compare")
    p.add_argument("--results", help="[target/bench-out/compare-<UTC stamp>]")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--update-benchmarks", action="store_true",
                   help="rewrite the compare section of BENCHMARKS.md")
    p.add_argument("--benchmarks-file", default="BENCHMARKS.md",
                   help="the file --update-benchmarks rewrites; the plot goes beside it")
    p.add_argument("--keep-outputs", action="store_true",
                   help="keep every contender's predictions (deleted once checked otherwise)")
    p.add_argument("--from-results", metavar="DIR",
                   help="run nothing: render the report, plot (and with --update-benchmarks the "
                   "BENCHMARKS.md section) again from DIR/results.json")
    args = p.parse_args()
    os.chdir(ROOT)
    if args.from_results:
        with open(os.path.join(args.from_results, "results.json")) as f:
            res = json.load(f)
        for entry in res["workloads"].values():
            for c, runs in entry["runs"].items():
                entry["contenders"][c] = summarise(runs)
        return finish(res, args, args.from_results)

    stamp = datetime.datetime.now(datetime.timezone.utc)
    results_dir = args.results or f"target/bench-out/compare-{stamp:%Y%m%dT%H%M%SZ}"
    os.makedirs(results_dir, exist_ok=True)
    workloads = args.only.split(",") if args.only else list(WORKLOADS)
    for w in workloads:
        if w not in WORKLOADS:
            p.error(f"unknown workload {w}; known: {', '.join(WORKLOADS)}")
    contenders = [c for c in CONTENDERS if c in args.contenders]
    notes = []
    if "b" in contenders and not args.raw:
        contenders.remove("b")
        notes.append("(b) not run: no --raw binary given.")
    elif "b" in contenders and not os.path.exists(args.raw):
        contenders.remove("b")
        notes.append(f"(b) not run: {args.raw} does not exist.")
    if "a" in contenders and not os.path.exists(args.batchscore):
        sys.exit(f"harness: {args.batchscore} does not exist (cargo build --release)")
    scale_dir = os.path.join(args.data, args.scale)
    models_dir = os.path.join(args.data, "models")
    if not os.path.exists(os.path.join(args.data, f".done-{args.scale}")):
        sys.exit(f"harness: no {args.scale} data in {args.data}: "
                 f"run gen_data.py --scale {args.scale}")

    res = {
        "scale": args.scale, "date": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"), "machine": machine(),
        "versions": versions(), "repeat": args.repeat, "data_arg": args.data,
        "command": " ".join([".venv-bench/bin/python benches/compare/harness.py"]
                            + reproducible_args(sys.argv[1:])),
        "workloads": {}, "notes": notes,
    }
    res["commit"], res["dirty"] = git_commit()
    log(f"results -> {results_dir}")
    for wl_name in workloads:
        wl = WORKLOADS[wl_name]
        data_dir = os.path.join(scale_dir, wl["data"])
        model = os.path.join(models_dir, wl["model"])
        if not os.path.exists(model):
            sys.exit(f"harness: {model} missing: run gen_models.py")
        files = input_files(data_dir, wl["kind"])
        expected = input_items(files, wl["kind"])
        nbytes = sum(os.path.getsize(f) for f in files)
        entry = {"kind": wl["kind"], "what": wl["what"], "model": wl["model"],
                 "model_bytes": os.path.getsize(model), "files": len(files), "items": expected,
                 "bytes": nbytes, "input": data_dir, "batch_size": wl["batch"], "runs": {},
                 "contenders": {}}
        log(f"== {wl_name}: {expected} {wl['what']} in {len(files)} files ({nbytes / 1e6:.0f} MB)")
        reference = {}
        # In turn (a, b, ..., a, b, ...), not all of one contender's runs then the next's: a
        # shared VM's speed drifts over minutes, and runs in turn share that drift.
        runs = {c: [] for c in contenders}
        for rep in range(1, args.repeat + 1):
            for c in contenders:
                warm_page_cache(files + [model])
                runs[c].append(run_contender(c, args, wl_name, wl, model, data_dir, expected,
                                             results_dir, rep, reference))
        for c in contenders:
            entry["runs"][c] = runs[c]
            entry["contenders"][c] = summarise(runs[c])
        res["workloads"][wl_name] = entry

    busy = [r["busy_cores_before"] for e in res["workloads"].values() for runs in e["runs"].values()
            for r in runs if r.get("busy_cores_before") is not None]
    if busy and max(busy) > 0.2:
        res["notes"].append(f"Other work was running: in the second before a run the machine was "
                            f"already using up to {max(busy):.1f} of its {os.cpu_count()} cores "
                            "(see busy_cores_before in results.json); treat these figures as "
                            "noisy.")
    else:
        res["notes"].append("Nothing else was running: in the second before each run the machine "
                            f"used at most {max(busy or [0]):.2f} cores.")
    for w, e in res["workloads"].items():
        jm = e["contenders"].get("a", {}).get("job_model") or {}
        if jm.get("workers") is not None and jm["workers"] < WORKERS:
            res["notes"].append(f"{w}: batchscore ran {jm['workers']} worker(s), not {WORKERS}: "
                                f"the input makes fewer mini-batches than that ({e['files']} "
                                "files, 10 per mini-batch); the Pool (c) has as little to share.")
    if args.scale == "small":
        res["notes"].append("Small scale is a smoke test, not a measurement: start-up dominates "
                            "every figure.")
    if "d" in contenders:
        res["notes"].append("Ray: its CPUs are logical scheduling slots. `ray.init(num_cpus=2)` "
                            "with the predictor actors at `num_cpus=1` hangs (the 2 actors hold "
                            "both slots; read tasks never get one); with actors, read and write "
                            "tasks at 0.5 it runs but Ray Data throttles the pipeline (1M W1 rows "
                            "through the GBDT: 20-21 s of execution against 14-17 s). So Ray gets "
                            "4 logical CPUs (`--cluster-cpus 4`), 1 per actor, read and write "
                            "task: still 2 actors x 1 ONNX Runtime thread, plus up to 2 read or "
                            "write tasks beside them.")
        if any(WORKLOADS[w]["kind"] == "tabular" for w in workloads):
            res["notes"].append("Ray reads Parquet with its V1 reader (`--parquet-reader v1`): "
                                "Ray 2.60's default V2 reader packs the 100 files into a few read "
                                "tasks of very unequal size (blocks of 20k to 710k rows) and "
                                "ignores `override_num_blocks`, leaving one actor idle much of "
                                "the time (1M W1 rows through the GBDT: 20 s of execution with "
                                "V2, 14 s with V1 on this machine).")
    return finish(res, args, results_dir)


def finish(res, args, results_dir):
    """Writes results.json, report.md and the plot; updates BENCHMARKS.md if asked."""
    bench_path = os.path.abspath(args.benchmarks_file)
    plot_name = "BENCHMARKS-compare.png"
    plot_path = os.path.join(results_dir, plot_name)
    plot(res, plot_path)
    section = report_markdown(res, plot_name)
    with open(os.path.join(results_dir, "results.json"), "w") as f:
        json.dump(res, f, indent=2, default=str)
    with open(os.path.join(results_dir, "report.md"), "w") as f:
        f.write(section + "\n")
    log("")
    log(section)
    log(f"plot: {plot_path} ({os.path.getsize(plot_path) / 1e3:.0f} kB); "
        f"results: {results_dir}/results.json, {results_dir}/report.md")
    if args.update_benchmarks:
        update_benchmarks(bench_path, section)
        shutil.copy(plot_path, os.path.join(os.path.dirname(bench_path), plot_name))
        log(f"updated {bench_path} and {plot_name} beside it")
    failed = [f"{w}/{c}" for w, e in res["workloads"].items() for c, s in e["contenders"].items()
              if not s["ok"]]
    if failed:
        log(f"errors in: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
