"""The warm sandbox server: reused between documents, never left with a parser running."""

import asyncio
import functools
import os
import signal

import psutil
import pytest

from app.extraction.extractors import Limits
from app.extraction.sandbox import DocumentIn, SandboxLimits, extract_in_sandbox, sandbox_pool
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


@pytest.fixture(autouse=True)
async def own_pool():
    """Each test starts and ends with no sandbox server: one that fails cannot leave a parse running
    into the next (the event loop, and with it the pool, lives for the whole session)."""
    await sandbox_pool().close()
    yield
    await sandbox_pool().close()


async def parse_slowly(limits: SandboxLimits = LIMITS) -> tuple[asyncio.Task, int, psutil.Process]:
    """Start parsing the slow PDF; once the sandbox server serving it has forked its child:
    (the task, that server's pid, the child)."""
    pool = sandbox_pool()
    others = set(pool.busy)  # servers busy for someone else are not this document's
    task = asyncio.create_task(extract_in_sandbox([DocumentIn(slow_pdf(), "slow.pdf")], limits))
    while True:
        for server in pool.busy - others:
            children = parsers(server.pid)
            if children:
                return task, server.pid, children[0]
        assert not task.done(), "the parse ended before its child was observed"
        await asyncio.sleep(0.005)


async def settled(task: asyncio.Task, child: psutil.Process) -> None:
    """Wait until the forked child has set itself up: it lowers its priority last, after its limits."""
    while True:
        try:
            if child.nice() == 10:
                return
        except psutil.NoSuchProcess:
            raise AssertionError("the child ended without ever running at niceness 10") from None
        assert not task.done(), "the child never ran at niceness 10"
        await asyncio.sleep(0.005)


async def suspend(child: psutil.Process) -> None:
    """Stop the child mid-parse (SIGSTOP lands when it is next scheduled): it cannot finish, and
    its pid stays its own, until it is resumed or killed."""
    child.suspend()
    while (status := child.status()) != psutil.STATUS_STOPPED:
        assert status != psutil.STATUS_ZOMBIE, "the parse ended before the child was stopped"
        await asyncio.sleep(0.005)


async def test_one_warm_server_parses_document_after_document_in_fresh_children():
    pool = sandbox_pool()
    seen_children = set()
    for i in range(3):
        [outcome] = await extract_in_sandbox([DocumentIn(prose(200, seed=i).encode(), "a.txt")], LIMITS)
        assert outcome.extracted is not None and outcome.extracted.blocks
        [server] = pool.pids()
        seen_children.add(server)
    assert len(seen_children) == 1, "the server is reused"
    assert parsers(server) == []
    proc = psutil.Process(server)
    assert "app.extraction.sandbox" in " ".join(proc.cmdline())
    environ = proc.environ()
    assert not [k for k in environ if "SECRET" in k or "DATABASE" in k], "the sandbox gets no engine secrets"


async def test_the_child_runs_at_lower_priority_with_limits_and_no_files(tmp_path):
    # A document cannot write files: RLIMIT_FSIZE is 0 in the child. Read the limits the child has
    # from /proc while a slow parse runs, once it has set itself up (a fork is briefly unconfined).
    task, _, child = await parse_slowly()
    await settled(task, child)
    await suspend(child)  # still parsing, and still this child, while it is read
    limits = open(f"/proc/{child.pid}/limits").read().splitlines()
    assert child.nice() == 10
    child.resume()
    assert any(line.startswith("Max file size") and line.split()[3] == "0" for line in limits)
    assert any(line.startswith("Max address space") and line.split()[3] == str(512 * MB) for line in limits)
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
    task, server, child = await parse_slowly()
    await suspend(child)  # the parse cannot finish (nor the server reply) before the kill lands
    os.killpg(server, signal.SIGKILL)
    [lost] = await task
    assert lost.extracted is None and "stopped unexpectedly" in lost.error
    [ok] = await extract_in_sandbox([DocumentIn(b"next document", "a.txt")], LIMITS)
    assert ok.extracted is not None and server not in pool.pids()


async def test_cancelling_an_extraction_kills_its_server_and_parser():
    pool = sandbox_pool()
    task, server, child = await parse_slowly()
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
