"""A candidate that costs (almost) nothing: `python bench/fixed_answer.py PORT` answers every request
with the same single-row V2 prediction, so the router's copy, parse and compare work can be measured
without a second model competing for the same CPUs. For benchmarks only."""

from __future__ import annotations

import asyncio
import sys

import orjson
import uvloop

OUTPUTS = [
    {"name": "label", "datatype": "INT64", "shape": [1], "data": [1]},
    {"name": "probabilities", "datatype": "FP32", "shape": [1, 2], "data": [0.3, 0.7]},
]
BODY = orjson.dumps({"model_name": "bench", "model_version": "2", "id": "fixed", "outputs": OUTPUTS})
ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
    len(BODY),
    BODY,
)


class FixedAnswer(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport, self.buffer = transport, b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].lower()
            start = head.find(b"content-length:")
            length = int(head[start + 15 :].split(b"\r\n", 1)[0]) if start >= 0 else 0
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self.transport.write(ANSWER)  # type: ignore[attr-defined]


async def main(port: int) -> None:
    await asyncio.get_running_loop().create_server(FixedAnswer, "127.0.0.1", port)
    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1])))
