"""Human summaries of enqueue, worker and queue (on stderr; the JSON is on stdout)."""

from __future__ import annotations


def _age(seconds) -> str:
    if seconds is None:
        return "-"
    seconds = float(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s"


def enqueue_summary(doc: dict) -> str:
    jobs = doc.get("jobs") or []
    issues = ", ".join(f"#{job['issue']}" for job in jobs)
    return (f"Queued {len(jobs)} job(s) ({issues}) on {doc['queue_url']}; "
            f"{doc['waiting']} waiting of at most {doc['max_pending']}")


def worker_summary(doc: dict) -> str:
    counts = doc.get("counts") or {}
    done = ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "no jobs"
    lines = [f"Worker stopped ({doc['stopped_by']}) after {doc['seconds']:.1f} s: {done}"]
    for job in doc.get("jobs") or []:
        if job["outcome"] in ("failed", "cut_off") and job.get("error"):
            lines.append(f"  issue #{job['issue']} (job {job['job']}): "
                         f"{job['error']['message']}")
    if counts.get("failed"):
        lines.append("  see `log-archiver queue status`; `log-archiver queue retry "
                     "--all-failed` runs them again")
    return "\n".join(lines)


def status_summary(doc: dict) -> str:
    counts, oldest = doc["counts"], doc["oldest_age_seconds"]
    lines = [f"Queue {doc['queue_url']}: " + ", ".join(
        f"{counts[state]} {state} (oldest {_age(oldest[state])})"
        if counts[state] else f"0 {state}" for state in ("pending", "running", "failed",
                                                           "done"))]
    for job in doc["jobs"]:
        if job["state"] == "done":
            continue
        line = f"  {job['state']:<8} issue #{job['issue']}  job {job['id']}  " \
               f"{_age(job['age_seconds'])}"
        if job.get("error"):
            line += f"  {job['error']['message']}"
        elif job.get("note"):
            line += f"  ({job['note']})"
        lines.append(line)
    if doc.get("stale_running"):
        lines.append(f"  {len(doc['stale_running'])} running job(s) lost their worker; the "
                     "next worker puts them back in the queue")
    if doc.get("records_ignored"):
        lines.append(f"  {doc['records_ignored']} record(s) in the queue are no job of "
                     "log-archiver's (written by someone else, or damaged): ignored")
    return "\n".join(lines)


def changed_summary(doc: dict) -> str:
    jobs = doc.get("jobs") or []
    if doc.get("action") == "retry":
        return (f"{len(jobs)} failed job(s) back in the queue; run `log-archiver worker` "
                "(or --once)" if jobs else "No failed job to retry")
    return f"Removed {len(jobs)} done job(s)" if jobs else "No done job to remove"
