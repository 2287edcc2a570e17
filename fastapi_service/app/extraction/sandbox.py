"""Parse documents in a forked child process with hard limits, forked from a warm server.

The engine never parses untrusted bytes in its own process. `extract_in_sandbox` hands the
documents to a sandbox server (`python -m app.extraction.sandbox`): a small interpreter with a
clean environment that has imported the parsers once. For every request the server forks a
child, which caps its address space (RLIMIT_AS), CPU time (RLIMIT_CPU) and file writes, then
lowers its CPU priority, before it reads anything, parses, writes JSON back and exits; the server
kills it when the wall-clock budget runs out. A PDF bomb or a parser stuck in a loop therefore costs one
child process, never the engine, and no document sees another's state (each child is a fresh
fork of the idle server). Forking a warm server instead of starting an interpreter per document
saves 60-250 ms of CPU per document, which the embedding model gets instead.

Servers are pooled per event loop, one per concurrent extraction; one that misbehaves (dies,
outlives the engine's backstop deadline, or is cancelled mid-request) is killed with its process
group and replaced on the next call.

Protocol on the server's stdin/stdout, per request: a 4-byte big-endian length and a JSON spec
`{limits, memory_mb, cpu_seconds, timeout_seconds, docs: [{filename, mimetype, size}]}`, then the
documents' bytes back to back. The reply is a 4-byte length and JSON `{code, timed_out, stderr}`,
then a 4-byte length and the child's results as it wrote them, `[{ok, error?, kind, title,
blocks, links}]` (empty unless the child exited 0 in time).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import struct
import sys
import weakref
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from app.extraction.extractors import Block, Extracted, ExtractionError, Limits

if TYPE_CHECKING:
    import asyncio

MB = 1024 * 1024
# Only what a Python interpreter needs: the parser gets none of the engine's secrets.
CHILD_ENV_KEYS = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "VIRTUAL_ENV", "SYSTEMROOT")
# Parsing is background work: on a busy machine the embedding model (and the API) go first.
CHILD_NICENESS = 10
# Extra seconds the engine waits for a server's reply beyond the parse budget before it gives
# up on the server itself (the server enforces the budget on its child; this catches a wedged one).
BACKSTOP_SECONDS = 10.0
MAX_IDLE_SERVERS = 4
STDERR_TAIL_BYTES = 64 * 1024
HEADER = struct.Struct("!I")


@dataclass(frozen=True)
class SandboxLimits:
    extraction: Limits
    timeout_seconds: float
    memory_mb: int


@dataclass
class DocumentIn:
    data: bytes
    filename: str = ""
    mimetype: str = ""


@dataclass
class Outcome:
    """One document's result: `extracted` or a human `error`."""

    extracted: Extracted | None = None
    error: str | None = None


async def extract_in_sandbox(documents: list[DocumentIn], limits: SandboxLimits) -> list[Outcome]:
    if not documents:
        return []
    spec = {
        "limits": asdict(limits.extraction),
        "memory_mb": limits.memory_mb,
        "cpu_seconds": math.ceil(limits.timeout_seconds) + 1,
        "timeout_seconds": limits.timeout_seconds,
        "docs": [{"filename": d.filename, "mimetype": d.mimetype, "size": len(d.data)} for d in documents],
    }
    reply = await sandbox_pool().request(spec, b"".join(d.data for d in documents), limits.timeout_seconds)
    if reply is None or reply["timed_out"]:
        reason = f"parsing took longer than {limits.timeout_seconds:g} s (the limit); the file was not ingested"
        return [Outcome(error=reason) for _ in documents]
    if reply["code"] != 0 or reply["results"] is None:
        reason = _crash_reason(reply["code"], reply["stderr"], limits)
        return [Outcome(error=reason) for _ in documents]
    return [_outcome(item) for item in reply["results"]]


def _crash_reason(code: int | None, stderr: str, limits: SandboxLimits) -> str:
    if code is None:
        return "the document parser stopped unexpectedly (its sandbox process was lost); please upload it again"
    if code in (-signal.SIGXCPU, -signal.SIGKILL):
        return f"parsing used more than {limits.timeout_seconds:g} s of CPU (the limit); the file was not ingested"
    tail = stderr.strip().splitlines()[-1:] or [""]
    if "MemoryError" in tail[0] or code == -signal.SIGSEGV:
        return f"parsing needed more than {limits.memory_mb} MB of memory (the limit); the file was not ingested"
    return f"the document parser stopped unexpectedly (exit {code}: {tail[0][:200]})"


def _outcome(item: dict[str, Any]) -> Outcome:
    if not item.get("ok"):
        return Outcome(error=str(item.get("error") or "the document could not be parsed"))
    blocks = [Block(b["text"], b.get("page"), b.get("heading")) for b in item["blocks"]]
    return Outcome(Extracted(item["kind"], item.get("title"), blocks, item.get("links") or []))


# --- engine side: the server pool ---------------------------------------------------------------


class SandboxServer:
    """One warm sandbox server process; serves one request at a time."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls) -> SandboxServer:
        import asyncio

        env = {k: v for k, v in os.environ.items() if k in CHILD_ENV_KEYS}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app.extraction.sandbox",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,  # its own process group: killing it takes the forked child too
        )
        return cls(proc)

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def request(self, spec: dict[str, Any], payload: bytes) -> dict[str, Any]:
        import asyncio

        assert self.proc.stdin is not None and self.proc.stdout is not None
        header = json.dumps(spec).encode()
        self.proc.stdin.write(HEADER.pack(len(header)) + header)
        self.proc.stdin.write(payload)
        await self.proc.stdin.drain()
        (size,) = HEADER.unpack(await self.proc.stdout.readexactly(HEADER.size))
        reply: dict[str, Any] = json.loads(await self.proc.stdout.readexactly(size))
        (size,) = HEADER.unpack(await self.proc.stdout.readexactly(HEADER.size))
        results = await self.proc.stdout.readexactly(size)
        if results:
            reply["results"] = json.loads(results) if size < MB else await asyncio.to_thread(json.loads, results)
        return reply

    async def kill(self) -> None:
        import asyncio

        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        await asyncio.shield(self.proc.wait())


class SandboxPool:
    def __init__(self) -> None:
        self.idle: list[SandboxServer] = []
        self.busy: set[SandboxServer] = set()

    async def request(self, spec: dict[str, Any], payload: bytes, parse_seconds: float) -> dict[str, Any] | None:
        """The server's reply, or None when the server itself had to be killed for the deadline."""
        import asyncio

        server = self.idle.pop() if self.idle else await SandboxServer.start()
        self.busy.add(server)
        healthy = False
        try:
            async with asyncio.timeout(parse_seconds + BACKSTOP_SECONDS):
                reply = await server.request(spec, payload)
            healthy = True
            return reply
        except TimeoutError:
            return None
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            # The server died (killed from outside, or out of memory itself): report it like a crash.
            # (code None: whatever signal ended the server says nothing about the document).
            return {"code": None, "timed_out": False, "results": None, "stderr": f"sandbox server lost: {exc!r}"}
        finally:
            self.busy.discard(server)
            if healthy and len(self.idle) < MAX_IDLE_SERVERS:
                self.idle.append(server)
            else:  # also on cancellation (shutdown): never leave a parser running
                await server.kill()

    async def close(self) -> None:
        servers = [*self.idle, *self.busy]
        self.idle.clear()
        for server in servers:
            await server.kill()

    def pids(self) -> list[int]:
        return [s.pid for s in [*self.idle, *self.busy]]


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SandboxPool] = weakref.WeakKeyDictionary()


def sandbox_pool() -> SandboxPool:
    """This event loop's pool of sandbox servers."""
    import asyncio

    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        pool = _pools[loop] = SandboxPool()
    return pool


async def close_sandboxes() -> None:
    """Stop this event loop's sandbox servers (worker shutdown)."""
    await sandbox_pool().close()


# --- server side (runs as `python -m app.extraction.sandbox`) ------------------------------------
# The server imports neither asyncio nor the engine: only the extractors and their parsers.


def _preload() -> None:
    """Import every parser once, so forked children start warm."""
    import docx  # noqa: F401
    import lxml.html  # noqa: F401
    import pypdf  # noqa: F401
    from docx.table import Table  # noqa: F401
    from docx.text.paragraph import Paragraph  # noqa: F401
    from lxml import etree  # noqa: F401


def _read_exact(stream: Any, n: int) -> bytes | None:
    chunks, missing = [], n
    while missing:
        chunk = stream.read(missing)
        if not chunk:
            return None
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def _limit_resources(memory_mb: int, cpu_seconds: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * MB, memory_mb * MB))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # a parser has no business writing files
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _extract_one(data: bytes, meta: dict[str, Any], limits: Limits) -> dict[str, Any]:
    from app.extraction.extractors import extract

    try:
        extracted = extract(data, meta.get("filename", ""), meta.get("mimetype", ""), limits)
        return {"ok": True, **extracted.to_json()}
    except ExtractionError as exc:
        return {"ok": False, "error": str(exc)}
    except MemoryError:
        return {"ok": False, "error": "parsing needed more memory than the limit allows; the file was not ingested"}
    except RecursionError:
        return {"ok": False, "error": "the document nests structures too deeply to be parsed"}
    except Exception as exc:
        return {"ok": False, "error": f"the document could not be parsed ({type(exc).__name__}: {exc})"[:500]}


def _child(spec: dict[str, Any], payload: bytes, out_fd: int, err_fd: int) -> None:
    """In the forked child: limits first, then parse; never returns."""
    code = 0
    try:
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)  # fd 1 is the server's reply channel: the parser must not touch it
        os.dup2(err_fd, 2)
        _limit_resources(int(spec["memory_mb"]), int(spec["cpu_seconds"]))
        # Niceness last: a child seen at CHILD_NICENESS has all its limits (what tests wait for).
        os.nice(CHILD_NICENESS)
        limits = Limits(**spec["limits"])
        results, offset = [], 0
        for meta in spec["docs"]:
            size = int(meta["size"])
            results.append(_extract_one(payload[offset : offset + size], meta, limits))
            offset += size
        data = json.dumps(results).encode()
        view = memoryview(data)
        while view:
            view = view[os.write(out_fd, view) :]
    except BaseException:
        import traceback

        with contextlib.suppress(BaseException):
            traceback.print_exc()
            sys.stderr.flush()
        code = 70
    os._exit(code)


def _run_forked(spec: dict[str, Any], payload: bytes) -> tuple[dict[str, Any], bytes]:
    """Fork a child for one request; its reply and its results (JSON, passed through unparsed)."""
    import select
    import time

    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(out_r)
        os.close(err_r)
        _child(spec, payload, out_w, err_w)
    os.close(out_w)
    os.close(err_w)
    deadline = time.monotonic() + float(spec["timeout_seconds"])
    out, err = bytearray(), bytearray()
    buffers = {out_r: out, err_r: err}
    timed_out = False
    while buffers:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        ready, _, _ = select.select(list(buffers), [], [], remaining)
        for fd in ready:
            chunk = os.read(fd, MB)
            if chunk:
                buffers[fd].extend(chunk)
                if fd == err_r and len(err) > STDERR_TAIL_BYTES:
                    del err[:-STDERR_TAIL_BYTES]
            else:
                os.close(fd)
                del buffers[fd]
    if timed_out:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        for fd in buffers:
            os.close(fd)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    reply = {"code": code, "timed_out": timed_out, "results": None, "stderr": err.decode(errors="replace")}
    return reply, bytes(out) if code == 0 and not timed_out else b""


def serve() -> None:
    _preload()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        header = _read_exact(stdin, HEADER.size)
        if header is None:
            return  # the engine closed the pipe (stopped or died): so do we
        raw = _read_exact(stdin, HEADER.unpack(header)[0])
        if raw is None:
            return
        spec = json.loads(raw)
        payload = _read_exact(stdin, sum(int(d["size"]) for d in spec["docs"]))
        if payload is None:
            return
        reply, results = _run_forked(spec, payload)
        del payload
        body = json.dumps(reply).encode()
        stdout.write(HEADER.pack(len(body)) + body + HEADER.pack(len(results)))
        stdout.write(results)
        stdout.flush()


if __name__ == "__main__":
    serve()
