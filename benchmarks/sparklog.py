"""Spark's own account of a run: ``--engine spark`` arguments that write an uncompressed event
log, and the phases read back from it (session start, each job's wall time, the scoring stage's
task time split by Spark's Python metrics). The last job is the scoring job: its wall time is
the steady state, session start excluded."""
from __future__ import annotations

import glob
import json
import os

PYTHON_METRICS = ("time to start Python workers", "time to initialize Python workers", "time to run Python workers",
                  "time to execute Python code")


def spark_args(master: str, event_dir: str, *more: str) -> list[str]:
    """``--engine spark`` on ``master``, its event log written into ``event_dir``."""
    conf = {"spark.eventLog.enabled": "true", "spark.eventLog.dir": f"file://{event_dir}",
            "spark.eventLog.compress": "false", "spark.eventLog.rolling.enabled": "false"}
    settings = [a for k, v in conf.items() for a in ("--spark-conf", f"{k}={v}")]
    return ["--engine", "spark", "--master", master, *settings, *more]


def phases(event_dir: str, started: float) -> dict:
    """Session start (from ``started``, the command's epoch seconds), Spark jobs and the last
    stage's task time, from the one event log in ``event_dir``."""
    [log] = glob.glob(os.path.join(event_dir, "*"))
    with open(log) as f:
        events = [json.loads(line) for line in f]
    app = next(e["Timestamp"] for e in events if e["Event"] == "SparkListenerApplicationStart") / 1000
    end = next(e["Timestamp"] for e in events if e["Event"] == "SparkListenerApplicationEnd") / 1000
    starts = {e["Job ID"]: e["Submission Time"] / 1000 for e in events if e["Event"] == "SparkListenerJobStart"}
    jobs = [round(e["Completion Time"] / 1000 - starts[e["Job ID"]], 2) for e in events
            if e["Event"] == "SparkListenerJobEnd"]
    stage = [e["Stage Info"] for e in events if e["Event"] == "SparkListenerStageCompleted"][-1]
    acc = {a["Name"]: a.get("Value") for a in stage["Accumulables"]}
    task = {name: round(int(acc.get(name, 0)) / 1000, 1) for name in PYTHON_METRICS}
    task["executor run time"] = round(int(acc["internal.metrics.executorRunTime"]) / 1000, 1)
    return {"session start s": round(app - started, 2), "start to first job s": round(min(starts.values()) - app, 2),
            "jobs s": jobs, "last job s": jobs[-1], "after last job s": round(end - max(starts.values()) - jobs[-1], 2),
            "scoring stage tasks": stage["Number of Tasks"], "scoring stage task s": task}
