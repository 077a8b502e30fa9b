#!/usr/bin/env python3
"""Side-by-side CPU training-step benchmark: Tailor against PyTorch.

What it measures
----------------
The median wall-clock time of one f32 training step (forward, mean
cross-entropy, backward, AdamW step, zero_grad) of the same LLaMA-style
decoder, random weights and random tokens, in two systems:

  * Tailor: the benchmark binary build/benchmarks/tailor_bench_cpu_step
  * PyTorch: benchmarks/cpu_step_reference.py, a from-scratch torch model of
    the same shape, run with Debian's /usr/bin/python3 (python3-torch)

and from it tokens/s for each and the ratio tailor_tokens_per_s /
pytorch_tokens_per_s (above 1: Tailor is faster).

Why it is built this way
------------------------
The development machine has 2 cores shared with other work, and step times
vary by about +-20% (see /work/shared/PLATFORMS.md).  So the two systems are
measured in the same run, INTERLEAVED: R repeats (at least 3), each running
both programs one after the other, with the order alternating from repeat to
repeat so that neither system always gets the quieter slot.  Every measured
step of every repeat is pooled and the medians are compared.

Debian's python3-torch silently falls back to the single-threaded reference
BLAS (about 24x slower) unless OpenBLAS is the libblas.so.3 alternative.  A
comparison against such a crippled reference would be meaningless, so for the
default shape at 2 threads the driver refuses (exit 1) a reference whose
median step is slower than 1.5 x 4.72 s, the PLATFORMS.md figure, unless
--allow-slow-reference is given.

Which OpenBLAS build the reference gets matters too.  Debian installs
OpenBLAS in two flavours, openblas-pthread and openblas-openmp, and
update-alternatives picks pthread (priority 100 against 95) whenever both are
present, which libopenblas-dev makes likely.  Under torch's own OpenMP thread
pool the pthread flavour is markedly slower on 2 cores (about 7-8 s/step
against 4.7 s measured here), and the PLATFORMS.md figure is for the openmp
flavour.  So by default (--reference-blas openmp) the reference child runs
with /usr/lib/x86_64-linux-gnu/openblas-openmp first on LD_LIBRARY_PATH, which
makes its libblas.so.3 resolve to OpenBLAS-openmp without touching the
system's alternatives; --reference-blas system leaves the choice to the
system.  The Tailor child's library path is not changed: its BLAS is its own
business and it reports it in its "blas" field.

Both children get the same shape flags, OMP_NUM_THREADS /
OPENBLAS_NUM_THREADS set to --threads and, by default, OMP_WAIT_POLICY=PASSIVE
(--omp-wait-policy).  With GNU OpenMP's default spin-waiting, torch's step
collapses whenever another process holds a core: at a small shape the
reference went from 0.012 s to 0.74 s per step while two compilers ran
(0.42 s with the pthread-flavoured OpenBLAS); with PASSIVE it stayed at
0.012 s, and on a quiet machine the default shape was no slower (4.3-4.5 s
against 4.6-4.9 s).  Without it, a run on a busy shared machine measures the
scheduler, not the code, and flatters whichever system spins less.

Both children are given the same environment apart from the reference's
LD_LIBRARY_PATH.  Each must print one JSON line on stdout with the keys
system, blas, threads, params, step_times_s and tokens_per_step; their stderr
(progress) is passed through.

Output: a table on stdout and a JSON record (--json, default
benchmarks/results/cpu_step.json) with machine info, date, git commit, the
command line, both systems' raw step times, medians and the ratio.

This file uses only the Python standard library and runs under any python3.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
REFERENCE_SCRIPT = os.path.join(HERE, "cpu_step_reference.py")
DEFAULT_JSON = os.path.join(HERE, "results", "cpu_step.json")

# Shape flags passed unchanged to both programs: (flag, default).
SHAPE_FLAGS = [
    ("--vocab", 32000),
    ("--hidden", 768),
    ("--layers", 12),
    ("--heads", 12),
    ("--kv-heads", 4),
    ("--intermediate", 2048),
    ("--batch", 4),
    ("--seq", 256),
]
DEFAULT_THREADS = 2

# PLATFORMS.md: PyTorch 1.13.1 (Debian) + OpenBLAS, default shape, 2 threads.
ANCHOR_STEP_S = 4.72
SLOW_FACTOR = 1.5
# A first reference run this far off the anchor cannot be noise: stop early
# instead of spending the remaining repeats on it.
HOPELESS_FACTOR = 5.0

OPENBLAS_OPENMP_DIR = "/usr/lib/x86_64-linux-gnu/openblas-openmp"

REQUIRED_KEYS = ("system", "blas", "threads", "params", "step_times_s", "tokens_per_step")


def flag_dest(flag):
    return flag.lstrip("-").replace("-", "_")


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Interleaved CPU training-step benchmark: Tailor vs a PyTorch reference.")
    p.add_argument("--tailor", default=os.path.join("build", "benchmarks", "tailor_bench_cpu_step"),
                   help="Tailor benchmark binary (relative paths: current directory, then repo root)")
    p.add_argument("--python", default="/usr/bin/python3",
                   help="interpreter with torch for the reference (default: Debian's /usr/bin/python3)")
    p.add_argument("--repeats", type=int, default=3,
                   help="interleaved repeats of both systems (at least 3)")
    p.add_argument("--steps", type=int, default=3, help="measured steps per run")
    p.add_argument("--warmup", type=int, default=1, help="unmeasured warm-up steps per run")
    p.add_argument("--threads", type=int, default=DEFAULT_THREADS)
    p.add_argument("--seed", type=int, default=0)
    for flag, default in SHAPE_FLAGS:
        p.add_argument(flag, type=int, default=default)
    p.add_argument("--reference-blas", choices=("openmp", "system"), default="openmp",
                   help="openmp (default): run the reference with Debian's OpenBLAS-openmp first on "
                        "LD_LIBRARY_PATH; system: use whatever libblas.so.3 the system selects")
    p.add_argument("--omp-wait-policy", choices=("passive", "active", "unset"), default="passive",
                   help="OMP_WAIT_POLICY for both children (default passive; unset: inherit)")
    p.add_argument("--json", default=None,
                   help="where to write the JSON record (default: "
                        "<repo>/benchmarks/results/cpu_step.json)")
    p.add_argument("--timeout", type=float, default=3600.0,
                   help="seconds allowed for each child run")
    p.add_argument("--allow-slow-reference", action="store_true",
                   help="accept a reference slower than %.1f x %.2f s/step at the default shape"
                        % (SLOW_FACTOR, ANCHOR_STEP_S))
    args = p.parse_args(argv)
    if args.repeats < 3:
        p.error("--repeats must be at least 3 (got %d): medians of fewer interleaved runs "
                "are too noisy on a shared machine" % args.repeats)
    if args.steps < 1:
        p.error("--steps must be at least 1")
    if args.warmup < 0:
        p.error("--warmup must be >= 0")
    if args.threads < 1:
        p.error("--threads must be at least 1")
    return args


def resolve_tailor(path):
    if os.path.isabs(path):
        return path
    for base in (os.getcwd(), REPO_ROOT):
        candidate = os.path.join(base, path)
        if os.path.exists(candidate):
            return os.path.abspath(candidate)
    return os.path.abspath(path)


def child_flags(args):
    flags = []
    for flag, _ in SHAPE_FLAGS:
        flags += [flag, str(getattr(args, flag_dest(flag)))]
    flags += ["--threads", str(args.threads), "--warmup", str(args.warmup),
              "--steps", str(args.steps), "--seed", str(args.seed)]
    return flags


def is_default_shape(args):
    return (all(getattr(args, flag_dest(f)) == d for f, d in SHAPE_FLAGS)
            and args.threads == DEFAULT_THREADS)


def quote(cmd):
    return " ".join(shlex.quote(c) for c in cmd)


class BenchError(Exception):
    pass


def run_child(name, cmd, env, timeout):
    """Run one benchmark program; return its parsed JSON line."""
    sys.stderr.write("\n[cpu_step] %s: %s\n" % (name, quote(cmd)))
    sys.stderr.flush()
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, env=env,
                              timeout=timeout, universal_newlines=True)
    except OSError as e:
        raise BenchError("%s: cannot run %s: %s" % (name, cmd[0], e))
    except subprocess.TimeoutExpired:
        raise BenchError("%s: no result within %.0f s" % (name, timeout))
    if proc.returncode != 0:
        raise BenchError("%s exited with status %d (command: %s)" % (name, proc.returncode, quote(cmd)))
    record = None
    for line in reversed(proc.stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            break
    if record is None:
        raise BenchError("%s printed no JSON line on stdout; stdout was:\n%s" % (name, proc.stdout))
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise BenchError("%s: JSON line lacks %s: %s" % (name, ", ".join(missing), json.dumps(record)))
    times = record["step_times_s"]
    if (not isinstance(times, list) or not times
            or not all(isinstance(t, (int, float)) and t > 0 for t in times)):
        raise BenchError("%s: step_times_s must be a non-empty list of positive numbers: %r"
                         % (name, times))
    return record


def read_cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit():
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             universal_newlines=True, timeout=30)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return "unknown"


def machine_info():
    u = platform.uname()
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = None
    return {
        "uname": " ".join([u.system, u.node, u.release, u.version, u.machine]),
        "cpu_model": read_cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
    }


def short_blas(blas):
    """The first part of a BLAS description, for the table."""
    text = str(blas).split(" | ")[0]
    return text if len(text) <= 40 else text[:37] + "..."


def summarise(records):
    times = [t for r in records for t in r["step_times_s"]]
    first = records[0]
    median = statistics.median(times)
    return {
        "system": first["system"],
        "blas": first["blas"],
        "threads": first["threads"],
        "params": first["params"],
        "tokens_per_step": first["tokens_per_step"],
        "extra": {k: v for k, v in first.items() if k not in REQUIRED_KEYS},
        "step_times_s_per_repeat": [r["step_times_s"] for r in records],
        "step_times_s": times,
        "median_step_s": median,
        "min_step_s": min(times),
        "max_step_s": max(times),
        "tokens_per_s": first["tokens_per_step"] / median,
    }


def slow_reference_message(median, blas, python):
    limit = SLOW_FACTOR * ANCHOR_STEP_S
    return (
        "REFUSED: the PyTorch reference took %.2f s per step (median), slower than "
        "%.1f x %.2f s = %.2f s, the PLATFORMS.md figure for this shape on 2 threads.\n"
        "Its BLAS: %s\n"
        "This usually means torch is running on Debian's single-threaded reference BLAS "
        "(about 24x slower). Check `update-alternatives --display libblas.so.3-x86_64-linux-gnu` "
        "and install libopenblas0-openmp (or select an OpenBLAS alternative); also check that "
        "%s is Debian's python with python3-torch and that the machine is not overloaded.\n"
        "Pass --allow-slow-reference to compare anyway."
        % (median, SLOW_FACTOR, ANCHOR_STEP_S, limit, blas, python))


def main(argv=None):
    args = parse_args(argv)
    tailor = resolve_tailor(args.tailor)
    if not (os.path.isfile(tailor) and os.access(tailor, os.X_OK)):
        sys.stderr.write("cpu_step: Tailor benchmark binary %s not found or not executable "
                         "(build it, or pass --tailor PATH)\n" % tailor)
        return 1
    if not os.path.isfile(REFERENCE_SCRIPT):
        sys.stderr.write("cpu_step: reference script %s is missing\n" % REFERENCE_SCRIPT)
        return 1

    flags = child_flags(args)
    commands = {
        "tailor": [tailor] + flags,
        "pytorch": [args.python, REFERENCE_SCRIPT] + flags,
    }
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(args.threads)
    env["OPENBLAS_NUM_THREADS"] = str(args.threads)
    if args.omp_wait_policy != "unset":
        env["OMP_WAIT_POLICY"] = args.omp_wait_policy.upper()

    ref_env = dict(env)
    notes = []
    if args.reference_blas == "openmp":
        if os.path.isfile(os.path.join(OPENBLAS_OPENMP_DIR, "libblas.so.3")):
            old = env.get("LD_LIBRARY_PATH")
            ref_env["LD_LIBRARY_PATH"] = OPENBLAS_OPENMP_DIR + (":" + old if old else "")
        else:
            notes.append("%s not found (install libopenblas0-openmp): the reference uses the "
                         "system's libblas.so.3" % OPENBLAS_OPENMP_DIR)
            sys.stderr.write("cpu_step: note: " + notes[-1] + "\n")
    child_env = {"tailor": env, "pytorch": ref_env}

    check_slow = is_default_shape(args) and not args.allow_slow_reference
    expected_tokens = args.batch * args.seq
    records = {"tailor": [], "pytorch": []}
    order_log = []
    try:
        for rep in range(args.repeats):
            order = ["tailor", "pytorch"] if rep % 2 == 0 else ["pytorch", "tailor"]
            order_log.append(order)
            for name in order:
                rec = run_child(name, commands[name], child_env[name], args.timeout)
                if rec["tokens_per_step"] != expected_tokens:
                    raise BenchError("%s reports tokens_per_step %s, expected batch*seq = %d"
                                     % (name, rec["tokens_per_step"], expected_tokens))
                records[name].append(rec)
                sys.stderr.write("[cpu_step] repeat %d/%d %s: median %.3f s/step\n"
                                 % (rep + 1, args.repeats, name,
                                    statistics.median(rec["step_times_s"])))
                if name == "pytorch" and check_slow and len(records["pytorch"]) == 1:
                    first = statistics.median(rec["step_times_s"])
                    if first > HOPELESS_FACTOR * ANCHOR_STEP_S:
                        sys.stderr.write(slow_reference_message(first, rec["blas"], args.python)
                                         + "\n(stopped after the first reference run)\n")
                        return 1
    except BenchError as e:
        sys.stderr.write("cpu_step: %s\n" % e)
        return 1

    tailor_sum = summarise(records["tailor"])
    torch_sum = summarise(records["pytorch"])

    if check_slow and torch_sum["median_step_s"] > SLOW_FACTOR * ANCHOR_STEP_S:
        sys.stderr.write(slow_reference_message(torch_sum["median_step_s"], torch_sum["blas"],
                                                args.python) + "\n")
        return 1

    warnings = []
    if tailor_sum["params"] != torch_sum["params"]:
        warnings.append("parameter counts differ: tailor %s, pytorch %s -- not the same model"
                        % (tailor_sum["params"], torch_sum["params"]))
    for s in (tailor_sum, torch_sum):
        if s["threads"] != args.threads:
            warnings.append("%s reports %s threads, asked for %d"
                            % (s["system"], s["threads"], args.threads))
    ratio = tailor_sum["tokens_per_s"] / torch_sum["tokens_per_s"]
    verdict = "Tailor faster" if ratio > 1.0 else ("Tailor slower" if ratio < 1.0 else "equal")

    # ---- table -----------------------------------------------------------
    header = ("system", "BLAS library", "threads", "median step s", "tokens/s")
    rows = []
    for s in (tailor_sum, torch_sum):
        rows.append((s["system"], short_blas(s["blas"]), str(s["threads"]),
                     "%.3f" % s["median_step_s"], "%.1f" % s["tokens_per_s"]))
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    print("CPU training step: vocab %d, hidden %d, %d layers, %d/%d heads, intermediate %d, "
          "B x T = %d x %d, %d params (pytorch count), %d repeats x %d steps"
          % (args.vocab, args.hidden, args.layers, args.heads, args.kv_heads, args.intermediate,
             args.batch, args.seq, torch_sum["params"], args.repeats, args.steps))
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    print("ratio tailor/pytorch tokens/s: %.3f (%s)" % (ratio, verdict))
    for w in warnings:
        print("WARNING: " + w)

    # ---- JSON record -----------------------------------------------------
    record = {
        "benchmark": "cpu_step",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "command_line": quote([sys.executable] + sys.argv),
        "machine": machine_info(),
        "shape": {flag_dest(f): getattr(args, flag_dest(f)) for f, _ in SHAPE_FLAGS},
        "threads": args.threads,
        "warmup": args.warmup,
        "steps": args.steps,
        "repeats": args.repeats,
        "seed": args.seed,
        "run_order": order_log,
        "child_commands": {k: quote(v) for k, v in commands.items()},
        "child_env": {"OMP_NUM_THREADS": env["OMP_NUM_THREADS"],
                      "OPENBLAS_NUM_THREADS": env["OPENBLAS_NUM_THREADS"],
                      "OMP_WAIT_POLICY": env.get("OMP_WAIT_POLICY"),
                      "reference_blas": args.reference_blas,
                      "reference_LD_LIBRARY_PATH": ref_env.get("LD_LIBRARY_PATH"),
                      "tailor_LD_LIBRARY_PATH": env.get("LD_LIBRARY_PATH")},
        "slow_reference_check": ("passed" if check_slow else
                                 ("skipped: --allow-slow-reference" if args.allow_slow_reference
                                  else "skipped: not the default shape/threads")),
        "anchor_step_s": ANCHOR_STEP_S,
        "systems": {"tailor": tailor_sum, "pytorch": torch_sum},
        "ratio_tailor_over_pytorch_tokens_per_s": ratio,
        "verdict": verdict,
        "warnings": warnings,
        "notes": notes,
    }
    out_path = os.path.abspath(args.json) if args.json else DEFAULT_JSON
    out_dir = os.path.dirname(out_path)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    with open(out_path, "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    print("wrote " + out_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
