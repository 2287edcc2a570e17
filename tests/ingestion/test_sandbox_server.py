"""The warm sandbox server: reused between documents, never left with a parser running."""

import asyncio
import functools
import os
import signal

import psutil

from app.ingestion.extractors import Limits
from app.ingestion.sandbox import DocumentIn, SandboxLimits, extract_in_sandbox, sandbox_pool
from tests.ingestion import files
from tests.ingestion.helpers import prose

MB = 1024 * 1024
ROOMY = Limits(max_bytes=50 * MB, max_pages=1000, max_chars=10_000_000, max_unzipped_bytes=100 * MB)
LIMITS = SandboxLimits(ROOMY, timeout_seconds=60, memory_mb=512)


@functools.cache
def slow_pdf() -> bytes:
    """120 pages of text: pypdf needs ~0.4 s for it here, a genuinely slow parse."""
    return files.pdf([prose(300, seed=i) for i in range(120)])


def parsers(server_pid: int) -> list[psutil.Process]:
    """The forked children of a sandbox server that are still alive."""
    try:
        return [c for c in psutil.Process(server_pid).children() if c.status() != psutil.STATUS_ZOMBIE]
    except psutil.NoSuchProcess:
        return []


async def parsing_child(task: asyncio.Task) -> tuple[int, psutil.Process]:
    """Wait until a sandbox server has forked a child for `task`'s document: (server pid, child)."""
    for _ in range(1000):
        for server in list(sandbox_pool().busy):
            children = parsers(server.pid)
            if children:
                return server.pid, children[0]
        assert not task.done(), "the parse ended before it was observed"
        await asyncio.sleep(0.005)
    raise AssertionError("no parser child appeared")


async def test_one_warm_server_parses_document_after_document_in_fresh_children():
    pool = sandbox_pool()
    await pool.close()
    seen_children = set()
    for i in range(3):
        [outcome] = await extract_in_sandbox([DocumentIn(prose(200, seed=i).encode(), "a.txt")], LIMITS)
        assert outcome.extracted is not None and outcome.extracted.blocks
        [server] = pool.pids()
        seen_children.add(server)
    assert len(seen_children) == 1, "the server is reused"
    assert parsers(server) == []
    proc = psutil.Process(server)
    assert "app.ingestion.sandbox" in " ".join(proc.cmdline())
    environ = proc.environ()
    assert not [k for k in environ if "SECRET" in k or "DATABASE" in k], "the sandbox gets no engine secrets"


async def test_the_child_runs_at_lower_priority_with_limits_and_no_files(tmp_path):
    # A document cannot write files: RLIMIT_FSIZE is 0 in the child. Read the limits the child had
    # from /proc while a slow parse runs.
    task = asyncio.create_task(extract_in_sandbox([DocumentIn(slow_pdf(), "slow.pdf")], LIMITS))
    _, child = await parsing_child(task)
    # The child lowers its priority and then sets its limits: under load the fork can be observed
    # in between, so read them once the file-size limit (set after the address space) is there.
    for _ in range(400):
        limits = open(f"/proc/{child.pid}/limits").read()
        if any(line.startswith("Max file size") and line.split()[3] != "unlimited" for line in limits.splitlines()):
            break
        await asyncio.sleep(0.005)
    assert child.nice() == 10
    assert any(line.startswith("Max file size") and line.split()[3] == "0" for line in limits.splitlines())
    assert any(
        line.startswith("Max address space") and line.split()[3] == str(512 * MB) for line in limits.splitlines()
    )
    [outcome] = await task
    assert outcome.extracted is not None


async def test_after_a_timeout_the_server_is_still_warm_and_no_parser_is_left():
    pool = sandbox_pool()
    [timed_out] = await extract_in_sandbox([DocumentIn(slow_pdf(), "slow.pdf")], SandboxLimits(ROOMY, 0.05, 512))
    assert "longer than 0.05 s" in timed_out.error
    [server] = pool.pids()
    assert parsers(server) == []
    [ok] = await extract_in_sandbox([DocumentIn(b"still working", "a.txt")], LIMITS)
    assert ok.extracted.blocks[0].text == "still working" and pool.pids() == [server]


async def test_a_server_killed_from_outside_fails_that_document_and_is_replaced():
    pool = sandbox_pool()
    task = asyncio.create_task(extract_in_sandbox([DocumentIn(slow_pdf(), "slow.pdf")], LIMITS))
    server, _ = await parsing_child(task)
    os.killpg(server, signal.SIGKILL)
    [lost] = await task
    assert lost.extracted is None and "stopped unexpectedly" in lost.error
    [ok] = await extract_in_sandbox([DocumentIn(b"next document", "a.txt")], LIMITS)
    assert ok.extracted is not None and server not in pool.pids()


async def test_cancelling_an_extraction_kills_its_server_and_parser():
    pool = sandbox_pool()
    task = asyncio.create_task(extract_in_sandbox([DocumentIn(slow_pdf(), "slow.pdf")], LIMITS))
    server, child = await parsing_child(task)
    children = [child]
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], "the parser was killed"
    assert not psutil.pid_exists(server) or psutil.Process(server).status() == psutil.STATUS_ZOMBIE
    assert server not in pool.pids()


async def test_concurrent_extractions_use_separate_servers_and_results_stay_in_order():
    docs = [[DocumentIn(f"document {i} part {j}".encode(), f"{i}.txt") for j in range(3)] for i in range(4)]
    outcomes = await asyncio.gather(*(extract_in_sandbox(d, LIMITS) for d in docs))
    for i, group in enumerate(outcomes):
        assert [o.extracted.blocks[0].text for o in group] == [f"document {i} part {j}" for j in range(3)]
    assert len(sandbox_pool().pids()) >= 2
