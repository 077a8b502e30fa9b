#!/usr/bin/env python3
"""Runs every shell command block of README.md and docs/*.md, in order, on a copy of the repository.

A user reads the documents top to bottom and types what they show; this does the same, so a
command that the code no longer accepts, a path that moved or a step that depends on an earlier
one that changed fails here (CTest label `slow`, tests/CMakeLists.txt).

What runs: every fenced block whose language is `sh` (or `bash`), as one `bash -e -o pipefail`
script per block, in the repository copy's root, blocks of one document in order, documents in
the order of DOCUMENTS below (the order a new user meets them: README first). `build/tailor` in the
copy is the tailor binary under test (a symbolic link into the build directory); a bare
`tailor` (as after `launch/mpirun.sh -np N`) resolves the same way.

Markers: an HTML comment on the line right before a block's opening fence.
  <!-- docs-test: skip REASON -->       the block is not run; REASON says why (it needs a GPU,
                                         Slurm, a download, or it is this test suite itself)
  <!-- docs-test: append ARGS -->       ARGS (key=value overrides) are appended to every
                                         `tailor train` command of the block: shortening a run
                                         for CI without changing what the document shows

Usage: run_doc_commands.py BUILD_DIR [--keep] [--only FILE]   (exit 0: every block passed)
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

DOCUMENTS = [
    "README.md",
    "docs/getting-started.md",
    "docs/data.md",
    "docs/models.md",
    "docs/peft.md",
    "docs/evaluation.md",
    "docs/preference.md",
    "docs/recipes.md",
    "docs/parallelism.md",
    "docs/checkpoints.md",
    "docs/gpu.md",
    "docs/slurm.md",
]
MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(skip|append)\b\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
BLOCK_TIMEOUT_S = 900


def blocks_of(path):
    """Yields (line number, language, marker, marker argument, body) for each fenced block."""
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m.group(2)
        marker = MARKER.match(lines[i - 1]) if i > 0 else None
        body = []
        i += 1
        while i < len(lines) and not FENCE.match(lines[i]):
            body.append(lines[i][len(m.group(1)):] if lines[i].startswith(m.group(1)) else lines[i])
            i += 1
        i += 1
        yield (start + 1, lang, marker.group(1) if marker else None,
               marker.group(2) if marker else "", "\n".join(body))


def shortened(script, args):
    """Appends `args` to every logical line (continuations joined) that runs `tailor train`."""
    out = []
    for line in script.replace("\\\n", " ").split("\n"):
        code, sep, comment = line.partition("  #")
        if re.search(r"(^|[\s/])tailor\s+train\b", code):
            code = code.rstrip() + " " + args
        out.append(code + (sep + comment if sep else ""))
    return "\n".join(out)


def copy_repository(src, dst):
    """The tracked files (git ls-files) or, outside a git checkout, the tree without build output."""
    try:
        files = subprocess.run(["git", "-C", src, "ls-files", "-z"], check=True,
                               capture_output=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        files = None
    if files:
        for f in filter(None, files):
            s = os.path.join(src, f)
            if not os.path.lexists(s):
                continue  # deleted in the work tree
            d = os.path.join(dst, f)
            os.makedirs(os.path.dirname(d), exist_ok=True)
            shutil.copy2(s, d, follow_symlinks=False)
    else:
        shutil.copytree(src, dst, dirs_exist_ok=True, symlinks=True,
                        ignore=shutil.ignore_patterns("build*", "runs", ".cache", ".git"))


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    build = os.path.abspath(sys.argv[1])
    keep = "--keep" in sys.argv
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    if not os.access(os.path.join(build, "tailor"), os.X_OK):
        print(f"{build}/tailor: not built", file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="tailor-docs-")
    copy = os.path.join(work, "repo")
    os.makedirs(copy)
    copy_repository(root, copy)
    os.symlink(build, os.path.join(copy, "build"))
    env = dict(os.environ)
    env["PATH"] = build + os.pathsep + env.get("PATH", "")
    failures, ran, skipped = [], 0, 0
    t_all = time.monotonic()
    for doc in DOCUMENTS:
        if only and doc != only:
            continue
        for line, lang, marker, arg, body in blocks_of(os.path.join(root, doc)):
            if lang not in ("sh", "bash"):
                continue
            where = f"{doc}:{line}"
            if marker == "skip":
                if not arg:
                    failures.append(f"{where}: `docs-test: skip` needs a reason")
                skipped += 1
                print(f"[skip] {where}: {arg}", flush=True)
                continue
            script = shortened(body, arg) if marker == "append" else body
            print(f"[run ] {where}", flush=True)
            t0 = time.monotonic()
            try:
                p = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=copy,
                                   env=env, capture_output=True, text=True,
                                   timeout=BLOCK_TIMEOUT_S)
                code, out = p.returncode, p.stdout + p.stderr
            except subprocess.TimeoutExpired as e:
                code, out = "timeout", (e.stdout or b"").decode(errors="replace")
            ran += 1
            print(f"       {time.monotonic() - t0:.1f} s, exit {code}", flush=True)
            if code != 0:
                tail = "\n".join(out.strip().split("\n")[-15:])
                failures.append(f"{where}: exit {code}\n--- script:\n{script}\n--- output (tail):\n{tail}")
    print(f"{ran} blocks run, {skipped} skipped, {len(failures)} failed in "
          f"{time.monotonic() - t_all:.0f} s", flush=True)
    for f in failures:
        print("FAILED " + f, file=sys.stderr)
    if keep:
        print(f"kept {copy}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
