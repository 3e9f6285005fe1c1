#!/usr/bin/env python3
"""Teltonika UDP devices against a running gateway: each device sends a
one-record codec 8 datagram, waits for its ack (2 s at most), and sends the
next; prints acks/s and ack latency. Python's asyncio is the limit well
before the gateway is, so it shows whether datagrams wait for each other,
not the gateway's ceiling.

    python3 benches/udp_load.py HOST PORT DEVICES SECONDS
"""
import asyncio
import struct
import sys
import time

ADDR = (sys.argv[1], int(sys.argv[2]))
DEVICES, SECONDS = int(sys.argv[3]), float(sys.argv[4])


def datagram(imei: str, packet_id: int, ts_ms: int) -> bytes:
    record = struct.pack(">QBiiHHBHBBBBBB", ts_ms, 0, 134_000_000, 525_000_000,
                         100, 90, 9, 60, 0, 0, 0, 0, 0, 0)
    body = (struct.pack(">H", packet_id) + b"\x01" + bytes([packet_id & 0xFF])
            + struct.pack(">H", 15) + imei.encode() + b"\x08\x01" + record + b"\x01")
    return struct.pack(">H", len(body)) + body


acked, latencies = 0, []


class Device(asyncio.DatagramProtocol):
    waiting = None

    def datagram_received(self, data, addr):
        if self.waiting and not self.waiting.done():
            self.waiting.set_result(data)


async def device(i: int, end: float) -> None:
    global acked
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(Device, remote_addr=ADDR)
    imei, ts, packet_id = str(356_307_040_000_000 + i), 1_700_000_000_000, 0
    while time.time() < end:
        packet_id, ts = (packet_id + 1) & 0xFFFF, ts + 1000
        proto.waiting = loop.create_future()
        sent = time.time()
        transport.sendto(datagram(imei, packet_id, ts))
        try:
            await asyncio.wait_for(proto.waiting, 2)
            acked += 1
            latencies.append(time.time() - sent)
        except asyncio.TimeoutError:
            pass
    transport.close()


async def main() -> None:
    end = time.time() + SECONDS
    await asyncio.gather(*(device(i, end) for i in range(DEVICES)))
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(len(latencies) * q))] * 1000
    print(f"{DEVICES} UDP devices: {acked / SECONDS:.0f} acks/s, "
          f"p50 {p(0.5):.2f} ms, p99 {p(0.99):.2f} ms")


asyncio.run(main())
