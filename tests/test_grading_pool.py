"""The answer-checking workers: fresh interpreters with no secret, capped memory and CPU, bounded in number."""

import os
import sys

import pytest

from lambda_trl import grading_pool
from lambda_trl.graders import AnswerChecker, case_seconds


linux_only = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")


def _proc(pid: int, name: str) -> bytes:
    with open(f"/proc/{pid}/{name}", "rb") as f:
        return f.read()


@linux_only
def test_a_worker_is_a_fresh_interpreter_without_the_trainers_secrets(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secretsecretsecretsecretsecret")
    monkeypatch.setenv("WANDB_API_KEY", "0123456789abcdef0123456789abcdef01234567")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    monkeypatch.setenv("LAMBDA_TRL_ANSWER_WORKER_MEMORY_MB", "1536")
    checker = AnswerChecker(workers=1)
    try:
        assert checker.check([("1", "1")], "qwen-math", case_seconds("qwen-math")) == [True]
        (worker,) = checker._idle
        pid = worker.process.pid
        environment = _proc(pid, "environ")
        for secret in (b"hf_secret", b"0123456789abcdef", b"aws-secret", b"HF_TOKEN", b"WANDB", b"AWS"):
            assert secret not in environment
        names = {entry.split(b"=", 1)[0].decode() for entry in environment.split(b"\0") if entry}
        assert names <= set(grading_pool.WORKER_ENVIRONMENT) | {"LAMBDA_TRL_ANSWER_WORKER_MEMORY_MB"}
        # exec'd, not forked: its own command line, so none of this process's memory
        assert _proc(pid, "cmdline").split(b"\0")[:3] == [sys.executable.encode(), b"-m", b"lambda_trl.grading_pool"]
        limits = _proc(pid, "limits").decode()
        address_space = next(line for line in limits.splitlines() if line.startswith("Max address space"))
        assert address_space.split()[3] == str(1536 * 1024 * 1024)
        cpu = next(line for line in limits.splitlines() if line.startswith("Max cpu time"))
        assert cpu.split()[3] != "unlimited"  # the case's CPU cap, moved before every case
    finally:
        checker.close()
    assert worker.process.poll() is not None  # closed: it exited at the end of its input


def test_workers_are_bounded_per_machine(monkeypatch):
    monkeypatch.delenv("LAMBDA_TRL_ANSWER_WORKERS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert grading_pool.default_workers() == 8  # 64 CPUs among 8 ranks
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert grading_pool.default_workers() == 2
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    assert grading_pool.default_workers() == grading_pool.MAX_DEFAULT_WORKERS
    monkeypatch.setenv("LAMBDA_TRL_ANSWER_WORKERS", "3")
    assert grading_pool.default_workers() == 3


def test_a_batch_starts_only_the_workers_it_needs_and_decides_repeats_once():
    checker = AnswerChecker(workers=4)
    try:
        assert checker.check([("1", "1")] * 50, "math-verify", case_seconds("math-verify")) == [True] * 50
        assert len(checker._idle) == 1
        pairs = [(str(i % 3), "1") for i in range(30)]
        assert checker.check(pairs, "math-verify", case_seconds("math-verify")) == [i % 3 == 1 for i in range(30)]
        assert len(checker._idle) == 3
    finally:
        checker.close()


def test_a_worker_that_dies_is_replaced(monkeypatch):
    checker = AnswerChecker(workers=1)
    try:
        assert checker.check([("1", "1")], "math-verify", case_seconds("math-verify")) == [True]
        (worker,) = checker._idle
        worker.process.kill()
        worker.process.wait()
        assert checker.check([("2", "2"), ("2", "3")], "math-verify", case_seconds("math-verify")) == [True, False]
    finally:
        checker.close()


def test_a_worker_that_died_while_idle_loses_no_case():
    # The first case of the batch goes to the dead worker's replacement, not to False.
    checker = AnswerChecker(workers=2)
    try:
        assert checker.check([("1", "1"), ("2", "2")], "math-verify", case_seconds("math-verify")) == [True, True]
        for worker in checker._idle:
            worker.process.kill()
            worker.process.wait()
        pairs = [(str(i), str(i)) for i in range(6)]
        assert checker.check(pairs, "math-verify", case_seconds("math-verify")) == [True] * 6
        assert all(worker.task is None and worker.process.poll() is None for worker in checker._idle)
        assert checker.check(pairs[:3], "math-verify", case_seconds("math-verify")) == [True] * 3
    finally:
        checker.close()


def test_workers_that_cannot_start_fail_the_batch_with_the_reason(monkeypatch):
    monkeypatch.setattr(sys, "executable", "/bin/false")  # exits at once, before it is ready
    checker = AnswerChecker(workers=2)
    with pytest.raises(RuntimeError, match="answer-checking workers .* did not start .*exit code 1"):
        checker.check([("1", "1"), ("2", "2")], "math-verify", case_seconds("math-verify"))
    assert checker._idle == []
