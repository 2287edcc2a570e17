"""Parse documents in a short-lived child process with hard limits.

The engine never parses untrusted bytes in its own process: `extract_in_sandbox` starts
`python -m app.ingestion.sandbox`, which caps its own address space (RLIMIT_AS) and CPU time
(RLIMIT_CPU) before reading anything, and the parent kills it when the wall-clock budget runs out.
A PDF bomb or a parser stuck in a loop therefore costs one child process, never the engine.

Protocol: argv[1] is JSON `{limits, docs: [{filename, mimetype, size}]}`; stdin carries the
documents' bytes back to back; stdout returns JSON `[{ok, error?, kind, title, blocks, links}]`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from app.ingestion.extractors import Block, Extracted, ExtractionError, Limits

if TYPE_CHECKING:
    import asyncio

MB = 1024 * 1024
# Only what a Python interpreter needs: the parser gets none of the engine's secrets.
CHILD_ENV_KEYS = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "VIRTUAL_ENV", "SYSTEMROOT")


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
    # asyncio is imported here, not at the top: the child runs this module as its main and never
    # needs it (importing asyncio is ~40% of the child's start-up, paid per document).
    import asyncio

    if not documents:
        return []
    spec = {
        "limits": asdict(limits.extraction),
        "memory_mb": limits.memory_mb,
        "cpu_seconds": math.ceil(limits.timeout_seconds) + 1,
        "docs": [{"filename": d.filename, "mimetype": d.mimetype, "size": len(d.data)} for d in documents],
    }
    env = {k: v for k, v in os.environ.items() if k in CHILD_ENV_KEYS}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.ingestion.sandbox",
        json.dumps(spec),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    payload = b"".join(d.data for d in documents)
    try:
        async with asyncio.timeout(limits.timeout_seconds):
            out, err = await proc.communicate(payload)
    except TimeoutError:
        await _kill(proc)
        reason = f"parsing took longer than {limits.timeout_seconds:g} s (the limit); the file was not ingested"
        return [Outcome(error=reason) for _ in documents]
    except BaseException:  # cancelled (shutdown): never leave a parser running
        await _kill(proc)
        raise
    if proc.returncode != 0:
        reason = _crash_reason(proc.returncode, err, limits)
        return [Outcome(error=reason) for _ in documents]
    results = await asyncio.to_thread(json.loads, out)
    return [_outcome(item) for item in results]


async def _kill(proc: asyncio.subprocess.Process) -> None:
    import asyncio

    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await asyncio.shield(proc.wait())


def _crash_reason(code: int | None, stderr: bytes, limits: SandboxLimits) -> str:
    if code in (-signal.SIGXCPU, -signal.SIGKILL):
        return f"parsing used more than {limits.timeout_seconds:g} s of CPU (the limit); the file was not ingested"
    tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
    if "MemoryError" in tail[0] or code == -signal.SIGSEGV:
        return f"parsing needed more than {limits.memory_mb} MB of memory (the limit); the file was not ingested"
    return f"the document parser stopped unexpectedly (exit {code}: {tail[0][:200]})"


def _outcome(item: dict[str, Any]) -> Outcome:
    if not item.get("ok"):
        return Outcome(error=str(item.get("error") or "the document could not be parsed"))
    blocks = [Block(b["text"], b.get("page"), b.get("heading")) for b in item["blocks"]]
    return Outcome(Extracted(item["kind"], item.get("title"), blocks, item.get("links") or []))


# --- child side ---------------------------------------------------------------------------------


def _limit_resources(memory_mb: int, cpu_seconds: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * MB, memory_mb * MB))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # a parser has no business writing files
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _extract_one(data: bytes, meta: dict[str, Any], limits: Limits) -> dict[str, Any]:
    from app.ingestion.extractors import extract

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


def main() -> None:
    spec = json.loads(sys.argv[1])
    _limit_resources(int(spec["memory_mb"]), int(spec["cpu_seconds"]))
    limits = Limits(**spec["limits"])
    data = sys.stdin.buffer.read()
    results = []
    offset = 0
    for meta in spec["docs"]:
        size = int(meta["size"])
        results.append(_extract_one(data[offset : offset + size], meta, limits))
        offset += size
    del data
    sys.stdout.write(json.dumps(results))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
