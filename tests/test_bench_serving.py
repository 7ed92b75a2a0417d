"""benchmarks/bench_serving.py's HTTP driver (the load test's keep-alive client) against a tiny
in-process server: 200 answers count as latencies, any other status as failures."""

import asyncio
import os

import pytest

from benchmarks import bench_serving


async def _drive(status: bytes) -> bench_serving.Cell:
    async def answer(reader, writer):
        while await reader.readuntil(b"\r\n\r\n"):
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cell = bench_serving.Cell(warmup=0.05, duration=0.3, server_pid=os.getpid())
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    async with server:
        await bench_serving.drive_http(port, request, connections=2, cell=cell)
    return cell


@pytest.mark.parametrize("status, ok", [(b"200 OK", True), (b"500 Internal Server Error", False)])
def test_http_driver_counts_answers_by_status(status, ok):
    cell = asyncio.run(_drive(status))
    summary = cell.summary()
    assert (summary["requests"] > 0, summary["failed"] > 0) == (ok, not ok)
    assert summary["server_rss_mb"] > 0 and len(cell.marks) == 2
