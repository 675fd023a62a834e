"""``python -m benchmarks.batch``: the README's batch table -- 1M reviews through every engine.

The 25,000 IMDB test reviews repeated 40 times (1,000,000 rows, ``id`` 0..999,999) are written
once as Parquet (64Ki-row row groups) and as text lines; then each command runs as its own
process tree, timed end to end (interpreter and Spark start included), its peak memory summed
over the tree (RSS polled from /proc), and its output checked: every id exactly once (in input
order for the local engine). ``--repo DIR`` runs the same commands in another checkout (e.g. the
previous commit) to compare side by side on the same machine in one run.

A second table gives the steady state, start excluded and reported apart: for Spark the scoring
job's wall time from Spark's event log (``benchmarks.sparklog``); for the local engine the whole
command less the same command on a 1,000-row input (interpreter start, model load); each as a
ratio to ``local --workers 2`` of the same checkout. ``--cluster`` adds a run on a standalone
master with two 1-core workers on 127.0.0.1 (``tests/runtime/cluster.py``, stopped by PID).

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
from .sparklog import phases, spark_args

COPIES = 40
START_ROWS = 1000  # the local engine's start cost: the same command on this many rows


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
    start = os.path.join(folder, "start.parquet")
    if not os.path.exists(start):
        pq.write_table(pq.read_table(parquet).slice(0, START_ROWS), start)
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


def runs(args, parquet: str, lines: str, out: str, cluster_url: str | None) -> list[dict]:
    """Each command: name, cmd, the output to check, ordered, and the Spark event log folder."""
    py, model = sys.executable, ["--model", os.path.abspath(args.bundle)]
    found = []

    def batch(name: str, more: list[str], events: str | None = None) -> None:
        output = os.path.join(out, name.replace(" ", "_").replace("[", "").replace("]", "") + ".parquet")
        found.append({"name": name, "cmd": [py, "-m", "runtime.batch", parquet, output, "--id-column", "id", *more,
                                             *model], "output": output, "ordered": events is None, "events": events})

    for w in args.workers:
        batch(f"local --workers {w}", ["--workers", str(w)])
    masters = ([("spark local[2]", "local[2]")] if args.spark else []) + (
        [("spark cluster", cluster_url)] if cluster_url else [])
    for name, master in masters:
        events = tempfile.mkdtemp(prefix="events-", dir=out)
        batch(name, spark_args(master, events), events)
    if args.predict:
        for w in args.workers:
            found.append({"name": f"predict --workers {w}", "cmd": [py, "-m", "runtime.predict", lines, "--workers",
                          str(w), "-o", os.path.join(out, f"predict{w}.csv")] + model, "output": None,
                          "ordered": True, "events": None})
    return found


def measure(run: dict, repo: str, n: int, start_parquet: str) -> dict:
    """Time one command; its output checked; its steady-state seconds (start excluded)."""
    started = time.time()
    r = timed(run["cmd"], repo)
    ok = r["code"] == 0 and (run["output"] is None or exactly_once(ids_of(run["output"]), n, run["ordered"]))
    r.update(checkout=repo, command=run["name"], rows_per_s=round(n / r["seconds"]), exactly_once=ok)
    if ok and run["events"]:
        r["spark"] = phases(run["events"], started)
        r["start_s"], r["steady_s"] = r["spark"]["session start s"], r["spark"]["last job s"]
    elif ok and run["name"].startswith("local"):
        cmd = run["cmd"]  # [python, -m, runtime.batch, INPUT, OUTPUT, options...]
        r["start_s"] = timed([*cmd[:3], start_parquet, run["output"] + ".start.parquet", *cmd[5:]], repo)["seconds"]
        r["steady_s"] = round(r["seconds"] - r["start_s"], 2)
    if "steady_s" in r:
        r["steady_rows_per_s"] = round(n / r["steady_s"])
    return r


def print_steady(results: list[dict]) -> None:
    """The steady-state table: each command's rows/s as a ratio to local --workers 2 of its checkout."""
    print("\n| checkout | command | start s (apart) | steady rows/s | vs local --workers 2 |")
    print("| --- | --- | --- | --- | --- |")
    for r in results:
        if "steady_rows_per_s" not in r:
            continue
        local = [x for x in results if x["checkout"] == r["checkout"] and x["command"] == "local --workers 2"
                 and "steady_rows_per_s" in x]
        ratio = f"{r['steady_rows_per_s'] / local[0]['steady_rows_per_s']:.0%}" if local else "-"
        print(f"| {os.path.basename(r['checkout'])} | {r['command']} | {r['start_s']} | "
              f"{r['steady_rows_per_s']:,} | {ratio} |", flush=True)


def parse_args(argv: list[str] | None):
    p = ArgumentParser(prog="python -m benchmarks.batch", description=__doc__.splitlines()[0])
    add_data_option(p)
    p.add_argument("--bundle", default="artifacts", help="bundle directory (default: artifacts)")
    p.add_argument("--work", help="folder for the inputs and outputs (default: a temp dir; inputs are reused)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--no-spark", dest="spark", action="store_false")
    p.add_argument("--cluster", action="store_true",
                   help="also run on a standalone Spark master with two 1-core workers on 127.0.0.1")
    p.add_argument("--predict", action="store_true", help="also time runtime.predict on the text lines")
    p.add_argument("--repo", action="append", default=[], help="also run the commands in this checkout")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--copies", type=int, default=COPIES, help=f"copies of the test set (default {COPIES}: 1M rows)")
    p.add_argument("--json", help="write the results here too")
    args = p.parse_args(argv)
    if not os.path.isdir(args.bundle):
        raise UserError(f"{args.bundle}: no such bundle directory")
    return args


def bench(args, work: str, cluster_url: str | None) -> list[dict]:
    parquet, lines, n = write_inputs(data_path(args.data), work, args.copies)
    results = []
    print(f"{n} rows; load: {open('/proc/loadavg').read().split()[:3]}", file=sys.stderr)
    print("| checkout | command | rows/s | seconds | peak memory MB (tree RSS) | exactly once |")
    print("| --- | --- | --- | --- | --- | --- |")
    for repo in [ROOT] + [os.path.abspath(r) for r in args.repo]:
        for _ in range(args.repeats):
            out = os.path.join(work, "out-" + os.path.basename(repo))
            os.makedirs(out, exist_ok=True)
            for run in runs(args, parquet, lines, out, cluster_url):
                r = measure(run, repo, n, os.path.join(work, "start.parquet"))
                results.append(r)
                print(f"| {os.path.basename(repo)} | {r['command']} | {r['rows_per_s']:,} | {r['seconds']} | "
                      f"{r['peak_mb']} | {'yes' if r['exactly_once'] else 'NO: ' + r['stderr']} |", flush=True)
    print_steady(results)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.work or tempfile.mkdtemp(prefix="reviewkit-bench-")
    os.makedirs(work, exist_ok=True)
    cluster = None
    if args.cluster:
        from tests.runtime.cluster import Cluster

        cluster = Cluster(tempfile.mkdtemp(prefix="cluster-", dir=work))
        os.environ.update({k: v for k, v in cluster.env().items() if k.startswith(("SPARK_", "PYSPARK_"))})
        cluster.start()
    try:
        results = bench(args, work, cluster.url if cluster else None)
    finally:
        left = cluster.stop() if cluster else []
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
