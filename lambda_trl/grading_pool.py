r"""
The worker processes that decide answers (`lambda_trl.graders`), each case under a time cap, apart from the trainer.

Completions and dataset answers are untrusted, and deciding them runs large parsers (math-verify, latex2sympy2, sympy)
over them. Even if one of those let text run as code, a worker could reach nothing worth having:

- a worker is a fresh interpreter (`python -m lambda_trl.grading_pool`), not a fork of the trainer: none of its
  memory (model, optimizer, tokens read from disk), and an environment of `WORKER_ENVIRONMENT` only, so no
  `HF_TOKEN`, `WANDB_API_KEY` or other secret variable;
- its address space is capped (`LAMBDA_TRL_ANSWER_WORKER_MEMORY_MB`, default `DEFAULT_MEMORY_MB`) and each case's CPU
  time by the kernel (`RLIMIT_CPU`: a case that spins past its cap ends the process);
- each case has a wall-clock deadline kept by the parent: past it the worker is killed and replaced and the case is
  wrong. Inside the worker the graders' own caps (qwen-math's 3 s alarm, math-verify's timeouts) end most slow cases
  first, without a restart;
- the workers per process are bounded (`LAMBDA_TRL_ANSWER_WORKERS`, default: the machine's CPUs shared among the
  machine's ranks, at most `MAX_DEFAULT_WORKERS`), and started only as a batch needs them.

Cases go one at a time to an idle worker as a JSON line on its stdin and come back as one on its stdout; identical
(grader, prediction, gold) cases in a batch are decided once.
"""

import json
import math
import os
import selectors
import subprocess
import sys
import time
from collections import deque


DEFAULT_MEMORY_MB = 4096
MAX_DEFAULT_WORKERS = 8
START_UP_SECONDS = 60.0
"""How long a new worker may take to import the graders (about 1-2 s on a quiet core)."""
MAX_FAILED_STARTS = 3
"""Workers that exit or time out before they are ready, per batch, before the batch fails with the reason."""

WORKER_ENVIRONMENT = (
    "PATH",
    "PYTHONPATH",
    "PYTHONHASHSEED",
    "TMPDIR",
    "TZ",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "SYSTEMROOT",
)
"""The only environment variables a worker gets: none of them holds a credential."""

_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def default_workers() -> int:
    """`LAMBDA_TRL_ANSWER_WORKERS`, else this machine's CPUs divided among its ranks, between 1 and 8."""
    if os.environ.get("LAMBDA_TRL_ANSWER_WORKERS"):
        return max(1, int(os.environ["LAMBDA_TRL_ANSWER_WORKERS"]))
    ranks_here = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, min(MAX_DEFAULT_WORKERS, (os.cpu_count() or 1) // max(1, ranks_here)))


def worker_environment() -> dict[str, str]:
    environment = {name: os.environ[name] for name in WORKER_ENVIRONMENT if name in os.environ}
    # The package itself must import in the worker, wherever it was imported from here.
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, environment.get("PYTHONPATH")]))
    environment["LAMBDA_TRL_ANSWER_WORKER_MEMORY_MB"] = str(_memory_mb())
    return environment


def _memory_mb() -> int:
    return int(os.environ.get("LAMBDA_TRL_ANSWER_WORKER_MEMORY_MB", DEFAULT_MEMORY_MB))


class _Worker:
    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lambda_trl.grading_pool"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=worker_environment(),
            cwd=_PACKAGE_ROOT,  # not the user's folder: `-m` puts the working directory first on sys.path
        )
        self.buffer = b""
        self.ready = False
        self.task: int | None = None
        self.deadline = time.monotonic() + START_UP_SECONDS

    def fileno(self) -> int:
        return self.process.stdout.fileno()

    def send(self, task: int, line: bytes, seconds: float):
        """Hands over a case; raises OSError (the case not taken) if the worker has exited."""
        self.process.stdin.write(line)
        self.process.stdin.flush()
        self.task, self.deadline = task, time.monotonic() + seconds

    def read_lines(self) -> list[bytes] | None:
        """The complete lines that arrived; None once the worker has exited."""
        chunk = os.read(self.fileno(), 1 << 16)
        if not chunk:
            return None
        *lines, self.buffer = (self.buffer + chunk).split(b"\n")
        return lines

    def kill(self):
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.process.kill()
        self.process.wait()


class AnswerChecker:
    """Decides (prediction, gold) pairs under a grader in worker processes; see the module docstring."""

    def __init__(self, workers: int | None = None, slack_seconds: float = 2.0):
        self.workers = workers or default_workers()
        self.slack_seconds = slack_seconds
        self._idle: list[_Worker] = []

    def check(self, pairs: list[tuple[str, str]], grader: str, case_seconds: float) -> list[bool]:
        """Each pair's verdict; a case past `case_seconds` (+ slack) or whose worker died is False."""
        unique = list(dict.fromkeys(pairs))
        verdicts = self._decide(unique, grader, case_seconds + self.slack_seconds) if unique else {}
        return [verdicts[pair] for pair in pairs]

    def _decide(self, unique: list[tuple[str, str]], grader: str, seconds: float) -> dict:
        waiting = deque(range(len(unique)))
        verdicts: dict[int, bool] = {}
        running = self._idle[: len(unique)]
        del self._idle[: len(running)]
        for worker in running:
            if not worker.ready:  # still starting when the last batch ended: its start-up time begins again
                worker.deadline = time.monotonic() + START_UP_SECONDS
        running += [_Worker() for _ in range(min(self.workers, len(unique)) - len(running))]
        selector = selectors.DefaultSelector()
        for worker in running:
            selector.register(worker, selectors.EVENT_READ)
        failed_starts = 0

        def assign(worker: _Worker) -> bool:
            """The next waiting case to `worker`; False if none is left."""
            if not waiting:
                return False
            task = waiting.popleft()
            prediction, gold = unique[task]
            line = json.dumps([task, grader, prediction, gold]).encode() + b"\n"
            try:
                worker.send(task, line, seconds)
            except OSError:  # it died while idle: the case goes to its replacement
                waiting.appendleft(task)
                replace(worker)
            return True

        def replace(worker: _Worker):
            """`worker` killed, its case (if any) wrong, and a new worker if cases are waiting or none is left."""
            nonlocal failed_starts
            if not worker.ready:
                failed_starts += 1
                if failed_starts > MAX_FAILED_STARTS:
                    raise RuntimeError(_start_failure(worker))
            if worker.task is not None and worker.task not in verdicts:
                verdicts[worker.task] = False
            selector.unregister(worker)
            worker.kill()
            running.remove(worker)
            if waiting or (not running and len(verdicts) < len(unique)):
                fresh = _Worker()
                running.append(fresh)
                selector.register(fresh, selectors.EVENT_READ)

        try:
            for worker in list(running):
                if worker.ready and not assign(worker):
                    break
            while len(verdicts) < len(unique) and running:
                timeout = max(0.0, min(worker.deadline for worker in running) - time.monotonic())
                for key, _ in selector.select(timeout):
                    worker = key.fileobj
                    lines = worker.read_lines()
                    if lines is None:  # it exited: killed from outside, or it could not start
                        replace(worker)
                        continue
                    for line in lines:
                        if line == b"ready":
                            worker.ready = True
                        else:
                            task, verdict = json.loads(line)
                            verdicts[task] = bool(verdict)
                            worker.task = None
                        if worker.task is None and not assign(worker):
                            selector.unregister(worker)
                            running.remove(worker)
                            self._idle.append(worker)
                            break
                now = time.monotonic()
                for worker in [w for w in running if w.deadline <= now]:
                    replace(worker)  # past its case's deadline (or its start-up's): killed, the case is wrong
        except BaseException:
            for worker in running:
                worker.kill()
            raise
        finally:
            selector.close()
        self._idle += running
        return {unique[task]: verdict for task, verdict in verdicts.items()}

    def close(self):
        """Ends the idle workers: each exits at the end of its input."""
        for worker in self._idle:
            worker.process.stdin.close()
        for worker in self._idle:
            try:
                worker.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                worker.process.kill()
            worker.process.stdout.close()
        self._idle = []


def _start_failure(worker: _Worker) -> str:
    worker.kill()
    return (
        f"{MAX_FAILED_STARTS + 1} answer-checking workers ({sys.executable} -m lambda_trl.grading_pool) did not start "
        f"(the last: exit code {worker.process.returncode}); their error, if any, is above."
    )


# ---- the worker ----------------------------------------------------------------------------------------------------


def _limit_memory(megabytes: int):
    import resource  # POSIX only, like the graders' SIGALRM caps

    limit = megabytes * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    except (ValueError, OSError) as error:  # e.g. macOS, whose kernel refuses most address-space limits
        print(f"lambda-trl: answer workers run without a memory cap here: {error}", file=sys.stderr)


def _limit_cpu(seconds: float):
    """The kernel ends this process when the coming case has used `seconds` of CPU time (SIGXCPU)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = math.ceil(usage.ru_utime + usage.ru_stime + seconds)
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


def worker_main():
    """Reads `[task, grader, prediction, gold]` lines on stdin, writes `[task, verdict]` lines on stdout."""
    import resource

    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # whatever a library prints stays out of the protocol
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a case ended by its CPU cap (SIGXCPU) leaves no core file
    _limit_memory(_memory_mb())
    from lambda_trl import graders

    graders.import_graders()
    protocol.write("ready\n")
    for line in sys.stdin:
        task, grader, prediction, gold = json.loads(line)
        _limit_cpu(graders.case_seconds(grader) + 1)
        protocol.write(json.dumps([task, graders.verdict(grader, prediction, gold)]) + "\n")


if __name__ == "__main__":
    worker_main()
