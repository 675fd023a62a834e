"""``python -m benchmarks.batch``: the README's batch table -- 1M reviews through every engine.

The 25,000 IMDB test reviews repeated 40 times (1,000,000 rows, ``id`` 0..999,999) are written
once as Parquet (64Ki-row row groups) and as text lines; then each command runs as its own
process tree, timed end to end (interpreter and Spark start included), its peak memory summed
over the tree (RSS polled from /proc), and its output checked: every id exactly once (in input
order for the local engine). ``--repo DIR`` runs the same commands in another checkout (e.g. the
previous commit) to compare side by side on the same machine in one run.

    python -m benchmarks.batch --data ../shared/data/aclImdb_v1_labeled.tar.gz --bundle artifacts
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time

from runtime.errors import ArgumentParser, UserError, run_cli

from .common import ROOT, add_data_option, data_path

COPIES = 40


def write_inputs(data: str, folder: str, copies: int) -> tuple[str, str, int]:
    """(parquet path, text path, rows), written once per folder."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from trainer.data import load_imdb

    parquet, lines = os.path.join(folder, "reviews.parquet"), os.path.join(folder, "reviews.txt")
    texts = load_imdb(data).test_texts
    n = len(texts) * copies
    if not (os.path.exists(parquet) and pq.ParquetFile(parquet).metadata.num_rows == n):
        flat = [t.replace("\n", " ").replace("\r", " ") for t in texts]  # one line per review
        table = pa.table({"id": pa.array(range(n), pa.int64()), "text": flat * copies})
        pq.write_table(table, parquet, row_group_size=65536)
        with open(lines, "w", encoding="utf-8") as f:
            f.write(("\n".join(flat) + "\n") * copies)
    return parquet, lines, n


def tree_rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, in KiB (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total


def timed(cmd: list[str], cwd: str) -> dict:
    """Run ``cmd``; wall seconds, peak tree RSS (MB), exit code, stderr's last line."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": cwd})
    peak, done = [0], threading.Event()

    def poll():
        while not done.wait(0.2):
            peak[0] = max(peak[0], tree_rss_kb(proc.pid))

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    err = proc.communicate()[1]
    seconds = time.perf_counter() - start
    done.set()
    watcher.join()
    lines = err.strip().splitlines()
    return {"seconds": round(seconds, 2), "peak_mb": round(peak[0] / 1024), "code": proc.returncode,
            "stderr": lines[-1] if lines else ""}


def ids_of(path: str) -> list[int]:
    """The ``id`` (or ``row``) column of a Parquet output file or Spark output directory, as written."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return table.column("id" if "id" in table.column_names else "row").to_pylist()


def exactly_once(ids: list[int], n: int, ordered: bool) -> bool:
    return ids == list(range(n)) if ordered else (len(ids) == n and sorted(ids) == list(range(n)))


def runs(args, parquet: str, lines: str, out: str) -> list[tuple[str, list[str], str | None, bool]]:
    """(name, command, output to check, ordered)."""
    py, model = sys.executable, ["--model", os.path.abspath(args.bundle)]
    batch = [py, "-m", "runtime.batch", parquet]
    found = []
    for w in args.workers:
        found.append((f"local --workers {w}", batch + [os.path.join(out, f"local{w}.parquet"), "--id-column", "id",
                                                       "--workers", str(w)] + model,
                      os.path.join(out, f"local{w}.parquet"), True))
    if args.spark:
        found.append(("spark local[2]", batch + [os.path.join(out, "spark.parquet"), "--id-column", "id",
                                                 "--engine", "spark", "--master", "local[2]"] + model,
                      os.path.join(out, "spark.parquet"), False))
    if args.predict:
        for w in args.workers:
            found.append((f"predict --workers {w}", [py, "-m", "runtime.predict", lines, "--workers", str(w),
                                                     "-o", os.path.join(out, f"predict{w}.csv")] + model, None, True))
    return found


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m benchmarks.batch", description=__doc__.splitlines()[0])
    add_data_option(p)
    p.add_argument("--bundle", default="artifacts", help="bundle directory (default: artifacts)")
    p.add_argument("--work", help="folder for the inputs and outputs (default: a temp dir; inputs are reused)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--no-spark", dest="spark", action="store_false")
    p.add_argument("--predict", action="store_true", help="also time runtime.predict on the text lines")
    p.add_argument("--repo", action="append", default=[], help="also run the commands in this checkout")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--copies", type=int, default=COPIES, help=f"copies of the test set (default {COPIES}: 1M rows)")
    p.add_argument("--json", help="write the results here too")
    args = p.parse_args(argv)
    if not os.path.isdir(args.bundle):
        raise UserError(f"{args.bundle}: no such bundle directory")
    work = args.work or tempfile.mkdtemp(prefix="reviewkit-bench-")
    os.makedirs(work, exist_ok=True)
    parquet, lines, n = write_inputs(data_path(args.data), work, args.copies)
    results = []
    print(f"{n} rows; load: {open('/proc/loadavg').read().split()[:3]}", file=sys.stderr)
    print("| checkout | command | rows/s | seconds | peak memory MB (tree RSS) | exactly once |")
    print("| --- | --- | --- | --- | --- | --- |")
    for repo in [ROOT] + [os.path.abspath(r) for r in args.repo]:
        for _ in range(args.repeats):
            out = os.path.join(work, "out-" + os.path.basename(repo))
            os.makedirs(out, exist_ok=True)
            for name, cmd, output, ordered in runs(args, parquet, lines, out):
                r = timed(cmd, repo)
                ok = r["code"] == 0 and (output is None or exactly_once(ids_of(output), n, ordered))
                r.update(checkout=repo, command=name, rows_per_s=round(n / r["seconds"]), exactly_once=ok)
                results.append(r)
                print(f"| {os.path.basename(repo)} | {name} | {r['rows_per_s']:,} | {r['seconds']} | "
                      f"{r['peak_mb']} | {'yes' if ok else 'NO: ' + r['stderr']} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
